package crashtest

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/neovratz/neovratz/internal/broker"
	"github.com/neovratz/neovratz/internal/broker/redisbroker"
	"github.com/neovratz/neovratz/internal/job"
)

// redisServer is a private redis-server process with its own directory, so the test can kill
// and restart it without disturbing the shared test Redis.
type redisServer struct {
	bin, dir string
	port     int
	fsync    string
	cmd      *exec.Cmd
}

func redisServerBinary(t *testing.T) string {
	t.Helper()
	if p := os.Getenv("NEOVRATZ_TEST_REDIS_SERVER"); p != "" {
		return p
	}
	p, err := exec.LookPath("redis-server")
	if err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatal("redis-server not found under CI: the test command must install it")
		}
		t.Skip("redis-server not found; run the tests through scripts/test.sh")
	}
	return p
}

func freePort(t *testing.T) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

func startRedis(t *testing.T, fsync string) *redisServer {
	t.Helper()
	s := &redisServer{bin: redisServerBinary(t), dir: t.TempDir(), port: freePort(t), fsync: fsync}
	s.start(t)
	t.Cleanup(func() { s.kill() })
	return s
}

func (s *redisServer) url() string { return fmt.Sprintf("redis://127.0.0.1:%d/0", s.port) }

func (s *redisServer) start(t *testing.T) {
	t.Helper()
	s.cmd = exec.Command(s.bin,
		"--port", strconv.Itoa(s.port), "--bind", "127.0.0.1", "--dir", s.dir,
		"--appendonly", "yes", "--appendfsync", s.fsync, "--save", "",
		"--maxmemory-policy", "noeviction", "--daemonize", "no", "--logfile", "")
	s.cmd.Stdout, s.cmd.Stderr = io.Discard, io.Discard
	if err := s.cmd.Start(); err != nil {
		t.Fatalf("start redis-server: %v", err)
	}
	c := redis.NewClient(&redis.Options{Addr: fmt.Sprintf("127.0.0.1:%d", s.port)})
	defer c.Close()
	deadline := time.Now().Add(15 * time.Second)
	for {
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		err := c.Ping(ctx).Err()
		cancel()
		if err == nil {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("redis-server on port %d did not answer: %v", s.port, err)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func (s *redisServer) kill() {
	if s.cmd != nil && s.cmd.Process != nil {
		_ = s.cmd.Process.Signal(syscall.SIGKILL)
		_ = s.cmd.Wait()
	}
}

func newRedisBroker(t *testing.T, url string, durable bool) (broker.Broker, *redis.Client) {
	t.Helper()
	opts, err := redis.ParseURL(url)
	if err != nil {
		t.Fatal(err)
	}
	opts.MaxRetries = -1 // a dead server must fail the call, not be retried into the restart
	rdb := redis.NewClient(opts)
	b, err := redisbroker.New(context.Background(), rdb, redisbroker.Options{
		Config:  broker.Config{Lease: time.Minute},
		Durable: durable,
		Logger:  slog.New(slog.NewTextHandler(io.Discard, nil)),
	})
	if err != nil {
		rdb.Close()
		t.Fatalf("redis broker (durable=%v): %v", durable, err)
	}
	return b, rdb
}

// TestRedisKilledKeepsAcknowledgedJobs: in durable mode every enqueue the broker acknowledged
// survives a SIGKILL of Redis in the middle of a stream of enqueues.
func TestRedisKilledKeepsAcknowledgedJobs(t *testing.T) {
	srv := startRedis(t, "always")
	b, rdb := newRedisBroker(t, srv.url(), true)

	var (
		mu    sync.Mutex
		acked []string
		wg    sync.WaitGroup
	)
	killed := make(chan struct{})
	for p := range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; ; i++ {
				ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
				j, _, err := b.Enqueue(ctx, job.Job{Kind: job.KindCompletion, Model: "m1", Owner: fmt.Sprintf("p%d", p)})
				cancel()
				if err != nil {
					select {
					case <-killed:
						return // expected: the server is gone
					default:
						t.Errorf("enqueue before the kill: %v", err)
						return
					}
				}
				mu.Lock()
				acked = append(acked, j.ID)
				mu.Unlock()
			}
		}()
	}
	// Kill once a good number of jobs is acknowledged, while enqueues are still in flight.
	for {
		mu.Lock()
		n := len(acked)
		mu.Unlock()
		if n >= 300 {
			break
		}
		time.Sleep(5 * time.Millisecond)
	}
	close(killed)
	srv.kill()
	wg.Wait()
	b.Close()
	rdb.Close()

	srv.start(t)
	b2, rdb2 := newRedisBroker(t, srv.url(), true)
	defer rdb2.Close()
	defer b2.Close()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	for _, id := range acked {
		j, err := b2.Get(ctx, id)
		if err != nil || j.Status != job.StatusQueued {
			t.Fatalf("acknowledged job %s after the restart: %+v, %v; want it queued", id, j, err)
		}
	}
	stats, err := b2.QueueStats(ctx)
	if err != nil || len(stats) != 1 || stats[0].Depth < len(acked) {
		t.Fatalf("queue stats after the restart = %+v, %v; want depth ≥ %d", stats, err, len(acked))
	}
	t.Logf("%d acknowledged jobs, all present after SIGKILL and restart (depth %d)", len(acked), stats[0].Depth)
	// And they can still be worked: reserve everything and finish it.
	for done := 0; done < stats[0].Depth; {
		ls, err := b2.Reserve(ctx, "w", []string{"m1"}, 50)
		if err != nil {
			t.Fatalf("reserve after the restart: %v", err)
		}
		for _, l := range ls {
			if err := b2.Complete(ctx, l, []byte(`{}`)); err != nil {
				t.Fatal(err)
			}
		}
		done += len(ls)
	}
}

// TestDurableModeRefusesUnsafeRedis: durable mode must not start on a Redis that could lose an
// acknowledged write (no append-only file, or one fsynced only every second on a Redis without
// WAITAOF).
func TestDurableModeRefusesUnsafeRedis(t *testing.T) {
	srv := startRedis(t, "everysec")
	opts, err := redis.ParseURL(srv.url())
	if err != nil {
		t.Fatal(err)
	}
	rdb := redis.NewClient(opts)
	defer rdb.Close()
	ctx := context.Background()
	info, err := rdb.Info(ctx, "server").Result()
	if err != nil {
		t.Fatal(err)
	}
	_, err = redisbroker.New(ctx, rdb, redisbroker.Options{Durable: true, Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	hasWaitAOF := redisVersionAtLeast(info, 7, 2)
	switch {
	case hasWaitAOF && err != nil:
		t.Fatalf("durable mode on a Redis with WAITAOF: %v", err)
	case !hasWaitAOF && err == nil:
		t.Fatal("durable mode started on a Redis without WAITAOF and appendfsync everysec")
	}
	if err := rdb.ConfigSet(ctx, "appendonly", "no").Err(); err != nil {
		t.Fatal(err)
	}
	if b, err := redisbroker.New(ctx, rdb, redisbroker.Options{Durable: true, Logger: slog.New(slog.NewTextHandler(io.Discard, nil))}); err == nil {
		b.Close()
		t.Fatal("durable mode started on a Redis without an append-only file")
	}
}

// redisVersionAtLeast reads redis_version from INFO server.
func redisVersionAtLeast(info string, major, minor int) bool {
	var ma, mi, pa int
	for _, line := range strings.Split(info, "\n") {
		if n, _ := fmt.Sscanf(line, "redis_version:%d.%d.%d", &ma, &mi, &pa); n >= 2 {
			return ma > major || ma == major && mi >= minor
		}
	}
	return false
}
