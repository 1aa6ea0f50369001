package worker_test

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"os/signal"
	"strconv"
	"syscall"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/neovratz/neovratz/internal/broker"
	"github.com/neovratz/neovratz/internal/broker/redisbroker"
	"github.com/neovratz/neovratz/internal/engine/sim"
	"github.com/neovratz/neovratz/internal/worker"
)

// The process tests (chaos, SIGTERM drain) run this test binary again as worker processes: with
// envChild set, TestMain runs a worker instead of the tests.
const envChild = "NEOVRATZ_WORKER_TEST_CHILD"

func TestMain(m *testing.M) {
	if os.Getenv(envChild) != "" {
		if err := runChildWorker(); err != nil {
			fmt.Fprintln(os.Stderr, "worker process:", err)
			os.Exit(1)
		}
		os.Exit(0)
	}
	os.Exit(m.Run())
}

// childSpec is what a worker process is told through its environment.
type childSpec struct {
	id, redisURL, prefix, model string
	slots, tokens               int
	tokenTime, lease, drain     time.Duration
}

func (c childSpec) env() []string {
	return append(os.Environ(), envChild+"=1",
		"CHILD_ID="+c.id, "CHILD_REDIS_URL="+c.redisURL, "CHILD_PREFIX="+c.prefix, "CHILD_MODEL="+c.model,
		"CHILD_SLOTS="+strconv.Itoa(c.slots), "CHILD_TOKENS="+strconv.Itoa(c.tokens),
		"CHILD_TOKEN_TIME="+c.tokenTime.String(), "CHILD_LEASE="+c.lease.String(), "CHILD_DRAIN="+c.drain.String())
}

func childSpecFromEnv() (childSpec, error) {
	var errs []error
	atoi := func(k string) int {
		n, err := strconv.Atoi(os.Getenv(k))
		errs = append(errs, err)
		return n
	}
	dur := func(k string) time.Duration {
		d, err := time.ParseDuration(os.Getenv(k))
		errs = append(errs, err)
		return d
	}
	c := childSpec{id: os.Getenv("CHILD_ID"), redisURL: os.Getenv("CHILD_REDIS_URL"), prefix: os.Getenv("CHILD_PREFIX"),
		model: os.Getenv("CHILD_MODEL"), slots: atoi("CHILD_SLOTS"), tokens: atoi("CHILD_TOKENS"),
		tokenTime: dur("CHILD_TOKEN_TIME"), lease: dur("CHILD_LEASE"), drain: dur("CHILD_DRAIN")}
	return c, errors.Join(errs...)
}

// openRedisBroker opens the Redis broker the test and its worker processes share.
func openRedisBroker(ctx context.Context, url, prefix string, lease time.Duration, logger *slog.Logger) (broker.Broker, func(), error) {
	opts, err := redis.ParseURL(url)
	if err != nil {
		return nil, nil, err
	}
	rdb := redis.NewClient(opts)
	b, err := redisbroker.New(ctx, rdb, redisbroker.Options{Prefix: prefix, Logger: logger,
		Config: broker.Config{Lease: lease, Backoff: func(int) time.Duration { return 10 * time.Millisecond }}})
	if err != nil {
		rdb.Close()
		return nil, nil, err
	}
	return b, func() { b.Close(); rdb.Close() }, nil
}

// runChildWorker is a worker process: the sim engine on Redis, JSON logs on stdout (the test
// reads the "job ended" lines), a graceful drain on SIGTERM as `neovratz worker` does.
func runChildWorker() error {
	spec, err := childSpecFromEnv()
	if err != nil {
		return err
	}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM)
	defer stop()
	logger := slog.New(slog.NewJSONHandler(os.Stdout, &slog.HandlerOptions{Level: slog.LevelDebug}))
	b, closeBroker, err := openRedisBroker(context.WithoutCancel(ctx), spec.redisURL, spec.prefix, spec.lease, logger)
	if err != nil {
		return err
	}
	defer closeBroker()
	eng := sim.New(sim.Config{Tokens: spec.tokens, InterTokenLatency: spec.tokenTime})
	w, err := worker.New(worker.Config{ID: spec.id, Models: []worker.Model{{Name: spec.model, Kind: worker.KindText, Engine: "sim", Slots: spec.slots}},
		DrainTimeout: spec.drain, HeartbeatInterval: time.Second}, b, map[string]worker.Engine{spec.model: eng}, logger, nil, nil)
	if err != nil {
		return err
	}
	return w.Run(ctx)
}
