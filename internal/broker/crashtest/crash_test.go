package crashtest

import (
	"context"
	"fmt"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/neovratz/neovratz/internal/broker"
	"github.com/neovratz/neovratz/internal/job"
	"github.com/neovratz/neovratz/internal/redistest"
)

const lease = time.Second

func redisConfig(t *testing.T) childConfig {
	return childConfig{backend: "redis", redisURL: redistest.URL(t), prefix: redistest.Prefix(t), model: "m1", lease: lease}
}

func sqliteConfig(t *testing.T) childConfig {
	return childConfig{backend: "sqlite", path: filepath.Join(t.TempDir(), "broker.db"), model: "m1", lease: lease}
}

func open(t *testing.T, c childConfig) broker.Broker {
	t.Helper()
	b, err := openBroker(context.Background(), c)
	if err != nil {
		t.Fatalf("open %s broker: %v", c.backend, err)
	}
	return b
}

func parseReserved(t *testing.T, line string) (id string, attempt int) {
	t.Helper()
	if _, err := fmt.Sscanf(line, "reserved %s %d", &id, &attempt); err != nil {
		t.Fatalf("worker said %q, want \"reserved ID ATTEMPT\"", line)
	}
	return id, attempt
}

// TestKilledWorkerJobIsRedelivered: a worker process dies by SIGKILL holding a job; after the
// lease lapses the job is delivered again (attempt counted) and finishes exactly once. With
// SQLite the broker's own process is the one that dies (`neovratz serve` runs the worker
// in-process), so the test closes its broker while the worker holds the file and reopens it after.
func TestKilledWorkerJobIsRedelivered(t *testing.T) {
	backends := []struct {
		name   string
		config func(*testing.T) childConfig
	}{{"redis", redisConfig}, {"sqlite", sqliteConfig}}
	for _, backend := range backends {
		t.Run(backend.name, func(t *testing.T) {
			c := backend.config(t)
			b := open(t, c)
			enq, _, err := b.Enqueue(context.Background(), job.Job{Kind: job.KindChat, Model: c.model, Owner: "k"})
			if err != nil {
				t.Fatal(err)
			}
			if c.backend == "sqlite" {
				b.Close()
			}

			w := startChild(t, c, modeHold, "doomed")
			id, attempt := parseReserved(t, w.line(t))
			if id != enq.ID || attempt != 1 {
				t.Fatalf("worker reserved %s attempt %d, want %s attempt 1", id, attempt, enq.ID)
			}
			if err := w.cmd.Process.Signal(syscall.SIGKILL); err != nil {
				t.Fatal(err)
			}
			_ = w.cmd.Wait()
			killedAt := time.Now()

			if c.backend == "sqlite" {
				b = open(t, c)
			}
			defer b.Close()
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()
			ls, err := b.Reserve(ctx, "survivor", []string{c.model}, 1)
			if err != nil {
				t.Fatalf("reserve after the kill: %v", err)
			}
			l := ls[0]
			if l.Job.ID != enq.ID || l.Attempt != 2 {
				t.Fatalf("redelivered %s attempt %d, want %s attempt 2", l.Job.ID, l.Attempt, enq.ID)
			}
			t.Logf("%s: redelivered %v after the kill (lease %v)", c.backend, time.Since(killedAt).Round(time.Millisecond), lease)
			if err := b.Complete(ctx, l, []byte(`{"ok":true}`)); err != nil {
				t.Fatal(err)
			}
			got, err := b.Get(ctx, enq.ID)
			if err != nil || got.Status != job.StatusSucceeded || got.Attempts != 2 {
				t.Fatalf("job = %+v, %v; want succeeded after 2 attempts", got, err)
			}
			evs, err := b.Events(ctx, enq.ID, "", 100, 0)
			if err != nil {
				t.Fatal(err)
			}
			var succeeded int
			for _, ev := range evs {
				if ev.Type == broker.EventStatus && strings.Contains(string(ev.Data), `"succeeded"`) {
					succeeded++
				}
			}
			if succeeded != 1 {
				t.Fatalf("job finished %d times, want once; events: %v", succeeded, evs)
			}
		})
	}
}

// TestFrozenWorkerLateCompletionRefused: a worker process frozen (SIGSTOP, as in a long GC pause
// or a network partition) past its lease loses the job to another worker; when it wakes, its
// completion is refused and the other worker's result stands.
func TestFrozenWorkerLateCompletionRefused(t *testing.T) {
	c := redisConfig(t)
	b := open(t, c)
	defer b.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	enq, _, err := b.Enqueue(ctx, job.Job{Kind: job.KindChat, Model: c.model, Owner: "k"})
	if err != nil {
		t.Fatal(err)
	}
	w := startChild(t, c, modeCompleteLate, "frozen")
	parseReserved(t, w.line(t))
	if err := w.cmd.Process.Signal(syscall.SIGSTOP); err != nil {
		t.Fatal(err)
	}
	ls, err := b.Reserve(ctx, "healthy", []string{c.model}, 1)
	if err != nil {
		t.Fatalf("reserve after the lease lapsed: %v", err)
	}
	if err := b.Complete(ctx, ls[0], []byte(`{"from":"healthy worker"}`)); err != nil {
		t.Fatal(err)
	}
	if err := w.cmd.Process.Signal(syscall.SIGCONT); err != nil {
		t.Fatal(err)
	}
	fmt.Fprintln(w.stdin, "go")
	if got := w.line(t); !strings.HasPrefix(got, "complete: ") || !strings.HasSuffix(got, broker.ErrLeaseLost.Error()) {
		t.Fatalf("frozen worker's late completion: %q, want it refused with %q", got, broker.ErrLeaseLost)
	}
	got, err := b.Get(ctx, enq.ID)
	if err != nil || got.Status != job.StatusSucceeded || string(got.Result) != `{"from":"healthy worker"}` {
		t.Fatalf("job = %+v, %v; want the healthy worker's result", got, err)
	}
}

// TestCancelReachesWorkerProcess: canceling a running job from another process reaches the worker
// process that holds it, through its heartbeat or the job's event log.
func TestCancelReachesWorkerProcess(t *testing.T) {
	c := redisConfig(t)
	b := open(t, c)
	defer b.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	enq, _, err := b.Enqueue(ctx, job.Job{Kind: job.KindChat, Model: c.model, Owner: "k"})
	if err != nil {
		t.Fatal(err)
	}
	w := startChild(t, c, modeHold, "holder")
	parseReserved(t, w.line(t))
	canceledAt := time.Now()
	if _, err := b.Cancel(ctx, enq.ID); err != nil {
		t.Fatal(err)
	}
	got := w.line(t)
	if !slices.Contains([]string{"canceled by heartbeat", "canceled by events"}, got) {
		t.Fatalf("worker said %q, want it to report the cancellation", got)
	}
	t.Logf("worker learned of the cancellation %v later (%s)", time.Since(canceledAt).Round(time.Millisecond), got)
	if err := w.cmd.Wait(); err != nil {
		t.Fatalf("worker exit: %v", err)
	}
}
