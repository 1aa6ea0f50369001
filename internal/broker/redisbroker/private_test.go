package redisbroker

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"strconv"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/neovratz/neovratz/internal/broker"
	"github.com/neovratz/neovratz/internal/redistest"
)

// privateRedis starts a redis-server of its own for tests that change server state (SCRIPT
// FLUSH, configuration) and must not disturb the shared test Redis. It skips when there is no
// redis-server binary.
func privateRedis(t *testing.T, args ...string) *redis.Client {
	t.Helper()
	redistestURLOrSkip(t)
	bin := os.Getenv("NEOVRATZ_TEST_REDIS_SERVER") // set by scripts/test.sh
	if bin == "" {
		var err error
		if bin, err = exec.LookPath("redis-server"); err != nil {
			t.Skip("no redis-server binary for a private Redis")
		}
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	port := l.Addr().(*net.TCPAddr).Port
	l.Close()
	cmd := exec.Command(bin, append([]string{"--port", strconv.Itoa(port), "--bind", "127.0.0.1",
		"--dir", t.TempDir(), "--save", "", "--daemonize", "no", "--logfile", ""}, args...)...)
	cmd.Stdout, cmd.Stderr = io.Discard, io.Discard
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = cmd.Process.Signal(syscall.SIGKILL)
		_ = cmd.Wait()
	})
	rdb := redis.NewClient(&redis.Options{Addr: fmt.Sprintf("127.0.0.1:%d", port)})
	t.Cleanup(func() { rdb.Close() })
	for deadline := time.Now().Add(10 * time.Second); ; {
		if rdb.Ping(context.Background()).Err() == nil {
			return rdb
		}
		if time.Now().After(deadline) {
			t.Fatal("private redis-server did not answer")
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// redistestURLOrSkip keeps the private-server tests with the others: they run (or skip) where
// the shared test Redis is configured (or not).
func redistestURLOrSkip(t *testing.T) {
	t.Helper()
	_ = redistest.URL(t)
}

// TestScriptCacheFlushed: after the server loses its script cache (a restart without the old
// process's state, SCRIPT FLUSH), pipelined scripts are loaded again and everything works.
func TestScriptCacheFlushed(t *testing.T) {
	rdb := privateRedis(t)
	ctx := ctxT(t)
	b, err := New(ctx, rdb, Options{Logger: quietLogger()})
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	if err := rdb.ScriptFlush(ctx).Err(); err != nil {
		t.Fatal(err)
	}
	j := mustEnqueue(t, b, newJob("m1"))
	if err := rdb.ScriptFlush(ctx).Err(); err != nil {
		t.Fatal(err)
	}
	l := mustReserve(t, b, "w1", "m1")
	if l.Job.ID != j.ID {
		t.Fatalf("got %s, want %s", l.Job.ID, j.ID)
	}
	if err := rdb.ScriptFlush(ctx).Err(); err != nil {
		t.Fatal(err)
	}
	if err := b.Complete(ctx, l, json.RawMessage(`{}`)); err != nil {
		t.Fatal(err)
	}
}

// TestDurableModeAppendfsyncAlways: on a Redis without WAITAOF, durable mode starts with
// appendfsync always and enqueues; with everysec it refuses to start.
func TestDurableModeAppendfsyncAlways(t *testing.T) {
	rdb := privateRedis(t, "--appendonly", "yes", "--appendfsync", "always")
	ctx := ctxT(t)
	b, err := New(ctx, rdb, Options{Durable: true, Logger: quietLogger()})
	if err != nil {
		t.Fatalf("durable mode with appendfsync always: %v", err)
	}
	mustEnqueue(t, b, newJob("m1"))
	b.Close()

	if err := rdb.ConfigSet(ctx, "appendfsync", "everysec").Err(); err != nil {
		t.Fatal(err)
	}
	d, err := readDurability(ctx, rdb)
	if err != nil {
		t.Fatal(err)
	}
	b, err = New(ctx, rdb, Options{Durable: true, Logger: quietLogger()})
	if d.version.atLeast(7, 2) {
		if err != nil {
			t.Fatalf("durable mode on redis with WAITAOF: %v", err)
		}
		mustEnqueue(t, b, newJob("m1")) // confirmed by WAITAOF
		b.Close()
		return
	}
	if err == nil {
		b.Close()
		t.Fatal("durable mode started with appendfsync everysec on a Redis without WAITAOF")
	}
}

// TestInjectedClock: leases lapse by Config.Now, not by the wall clock, so a clock moved past
// a lease makes the job available again at once.
func TestInjectedClock(t *testing.T) {
	rdb := redistest.Client(t)
	clock := &fakeClock{t: time.Date(2030, 1, 2, 3, 4, 5, 6, time.UTC)}
	b, _ := open(t, rdb, broker.Config{Lease: time.Hour, Now: clock.Now})
	j := mustEnqueue(t, b, newJob("m1"))
	if !j.CreatedAt.Equal(clock.Now()) {
		t.Fatalf("created_at = %v, want the injected clock's %v", j.CreatedAt, clock.Now())
	}
	old := mustReserve(t, b, "w1", "m1")
	clock.Add(2 * time.Hour)
	l := mustReserve(t, b, "w2", "m1")
	if l.Job.ID != j.ID || l.Attempt != 2 {
		t.Fatalf("got %s attempt %d, want %s attempt 2", l.Job.ID, l.Attempt, j.ID)
	}
	if err := b.ExtendLease(ctxT(t), old); err == nil {
		t.Fatal("the lapsed lease was extended")
	}
	got, err := b.Get(ctxT(t), j.ID)
	if err != nil || !got.StartedAt.Equal(clock.Now()) {
		t.Fatalf("started_at = %v, %v; want %v", got.StartedAt, err, clock.Now())
	}
}

// TestFinishedJobsLeaveListings: once a finished job's retention is over, maintenance drops it
// from the listings, so they do not grow without end.
func TestFinishedJobsLeaveListings(t *testing.T) {
	rdb := redistest.Client(t)
	b, prefix := open(t, rdb, broker.Config{Retention: 200 * time.Millisecond})
	ctx := ctxT(t)
	j := newJob("m1")
	j.Owner = "alice"
	mustEnqueue(t, b, j)
	l := mustReserve(t, b, "w1", "m1")
	if err := b.Complete(ctx, l, nil); err != nil {
		t.Fatal(err)
	}
	k := keys{prefix}
	deadline := time.Now().Add(10 * time.Second)
	for {
		all, _ := rdb.ZCard(ctx, k.all()).Result()
		own, _ := rdb.ZCard(ctx, k.owner("alice")).Result()
		fg, _ := rdb.ZCard(ctx, k.forget()).Result()
		if all == 0 && own == 0 && fg == 0 {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("listings still hold the finished job: all %d, owner %d, forget %d", all, own, fg)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// fakeClock is a clock the test moves by hand.
type fakeClock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *fakeClock) Add(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}
