package crashtest

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/neovratz/neovratz/internal/broker"
	"github.com/neovratz/neovratz/internal/broker/redisbroker"
	"github.com/neovratz/neovratz/internal/broker/sqlitebroker"
)

// The test binary re-runs itself as a worker process when this variable names a mode.
const envChildMode = "NEOVRATZ_CRASHTEST_MODE"

// Child modes.
const (
	// modeHold reserves one job, prints "reserved ID ATTEMPT", then heartbeats and follows the
	// job's events until it learns of a cancellation ("canceled by heartbeat|events") or is killed.
	modeHold = "hold"
	// modeCompleteLate reserves one job, prints "reserved ID ATTEMPT", never heartbeats, and on a
	// line from stdin tries to complete it, printing "complete: ok" or "complete: ERROR".
	modeCompleteLate = "complete-late"
)

func TestMain(m *testing.M) {
	if mode := os.Getenv(envChildMode); mode != "" {
		if err := runChild(mode); err != nil {
			fmt.Fprintln(os.Stderr, "child:", err)
			os.Exit(1)
		}
		os.Exit(0)
	}
	os.Exit(m.Run())
}

// childConfig is what a worker process needs to open the same broker as the test.
type childConfig struct {
	backend  string // "redis" or "sqlite"
	redisURL string
	prefix   string
	path     string
	model    string
	lease    time.Duration
}

func (c childConfig) env(mode, worker string) []string {
	return append(os.Environ(),
		envChildMode+"="+mode,
		"CRASHTEST_WORKER="+worker,
		"CRASHTEST_BACKEND="+c.backend,
		"CRASHTEST_REDIS_URL="+c.redisURL,
		"CRASHTEST_PREFIX="+c.prefix,
		"CRASHTEST_PATH="+c.path,
		"CRASHTEST_MODEL="+c.model,
		"CRASHTEST_LEASE="+c.lease.String(),
	)
}

func childConfigFromEnv() (childConfig, error) {
	lease, err := time.ParseDuration(os.Getenv("CRASHTEST_LEASE"))
	if err != nil {
		return childConfig{}, err
	}
	return childConfig{
		backend:  os.Getenv("CRASHTEST_BACKEND"),
		redisURL: os.Getenv("CRASHTEST_REDIS_URL"),
		prefix:   os.Getenv("CRASHTEST_PREFIX"),
		path:     os.Getenv("CRASHTEST_PATH"),
		model:    os.Getenv("CRASHTEST_MODEL"),
		lease:    lease,
	}, nil
}

// openBroker opens the broker a childConfig describes; the test side uses it too.
func openBroker(ctx context.Context, c childConfig) (broker.Broker, error) {
	cfg := broker.Config{Lease: c.lease, Backoff: func(int) time.Duration { return 10 * time.Millisecond }}
	logger := slog.New(slog.NewTextHandler(io.Discard, nil))
	switch c.backend {
	case "redis":
		opts, err := redis.ParseURL(c.redisURL)
		if err != nil {
			return nil, err
		}
		rdb := redis.NewClient(opts)
		b, err := redisbroker.New(ctx, rdb, redisbroker.Options{Config: cfg, Prefix: c.prefix, Logger: logger})
		if err != nil {
			rdb.Close()
			return nil, err
		}
		return closeBoth{b, rdb}, nil
	case "sqlite":
		return sqlitebroker.Open(ctx, c.path, cfg, logger)
	}
	return nil, fmt.Errorf("unknown backend %q", c.backend)
}

// closeBoth closes the broker and then the Redis client it was given.
type closeBoth struct {
	broker.Broker
	rdb *redis.Client
}

func (c closeBoth) Close() error {
	return errors.Join(c.Broker.Close(), c.rdb.Close())
}

func runChild(mode string) error {
	c, err := childConfigFromEnv()
	if err != nil {
		return err
	}
	ctx := context.Background()
	b, err := openBroker(ctx, c)
	if err != nil {
		return err
	}
	defer b.Close()
	rctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	ls, err := b.Reserve(rctx, os.Getenv("CRASHTEST_WORKER"), []string{c.model}, 1)
	if err != nil {
		return fmt.Errorf("reserve: %w", err)
	}
	l := ls[0]
	fmt.Printf("reserved %s %d\n", l.Job.ID, l.Attempt)

	switch mode {
	case modeHold:
		return holdUntilCanceled(ctx, b, l, c.lease)
	case modeCompleteLate:
		if _, err := bufio.NewReader(os.Stdin).ReadString('\n'); err != nil {
			return err
		}
		if err := b.Complete(ctx, l, []byte(`{"from":"late worker"}`)); err != nil {
			fmt.Printf("complete: %v\n", err)
		} else {
			fmt.Println("complete: ok")
		}
		return nil
	}
	return fmt.Errorf("unknown mode %q", mode)
}

// holdUntilCanceled keeps the lease alive and reports how the process learned of a cancellation:
// through its heartbeat or through the job's event log, whichever comes first.
func holdUntilCanceled(ctx context.Context, b broker.Broker, l *broker.Lease, lease time.Duration) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	how := make(chan string, 2)
	go func() {
		after := ""
		for ctx.Err() == nil {
			evs, err := b.Events(ctx, l.Job.ID, after, 100, time.Second)
			if err != nil {
				continue
			}
			for _, ev := range evs {
				after = ev.ID
				if ev.Type == broker.EventStatus && strings.Contains(string(ev.Data), `"canceled"`) {
					how <- "events"
					return
				}
			}
		}
	}()
	tick := time.NewTicker(lease / 4)
	defer tick.Stop()
	for {
		select {
		case by := <-how:
			fmt.Println("canceled by " + by)
			return nil
		case <-tick.C:
			err := b.ExtendLease(ctx, l)
			if errors.Is(err, broker.ErrCanceled) {
				fmt.Println("canceled by heartbeat")
				return nil
			}
			if err != nil {
				return fmt.Errorf("extend: %w", err)
			}
		}
	}
}

// child is a running worker process.
type child struct {
	cmd   *exec.Cmd
	lines chan string
	stdin io.WriteCloser
}

// startChild runs the test binary as a worker process in the given mode.
func startChild(t *testing.T, c childConfig, mode, worker string) *child {
	t.Helper()
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = c.env(mode, worker)
	cmd.Stderr = os.Stderr
	stdin, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	ch := &child{cmd: cmd, lines: make(chan string, 16), stdin: stdin}
	go func() {
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			ch.lines <- sc.Text()
		}
		close(ch.lines)
	}()
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
	})
	return ch
}

// line waits for the child's next line of output.
func (c *child) line(t *testing.T) string {
	t.Helper()
	select {
	case l, ok := <-c.lines:
		if !ok {
			t.Fatal("worker process exited without the expected output")
		}
		return l
	case <-time.After(30 * time.Second):
		t.Fatal("worker process said nothing for 30s")
	}
	return ""
}
