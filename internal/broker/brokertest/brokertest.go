// Package brokertest is the conformance suite of the broker contract. Every implementation runs
// it from its own tests:
//
//	func TestConformance(t *testing.T) {
//		brokertest.Run(t, func(t *testing.T, cfg broker.Config) broker.Broker { … })
//	}
//
// The suite uses real time with short leases, so it exercises the implementation's own lease
// clock (Redis's idle times, SQLite's timestamps) rather than a fake one.
package brokertest

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/neovratz/neovratz/internal/broker"
	"github.com/neovratz/neovratz/internal/job"
)

// Opener returns a fresh, empty broker built with cfg. The suite closes it.
type Opener func(t *testing.T, cfg broker.Config) broker.Broker

// Timings the suite relies on. Leases are short so lapses happen within a test; waits are long
// enough that a loaded two-core machine running the race detector still passes.
const (
	shortLease = 400 * time.Millisecond
	longLease  = time.Minute
	patience   = 10 * time.Second // how long an "eventually" may take
)

type suite struct {
	open Opener
}

// Run runs every conformance test against the brokers open returns.
func Run(t *testing.T, open Opener) {
	s := suite{open: open}
	tests := []struct {
		name string
		fn   func(*testing.T)
	}{
		{"EnqueueGet", s.testEnqueueGet},
		{"EnqueueInvalid", s.testEnqueueInvalid},
		{"Idempotency", s.testIdempotency},
		{"QueueCap", s.testQueueCap},
		{"PriorityThenFIFO", s.testPriorityThenFIFO},
		{"ReserveOnlyRequestedModels", s.testReserveOnlyRequestedModels},
		{"ReserveN", s.testReserveN},
		{"ReserveBlocksUntilEnqueue", s.testReserveBlocksUntilEnqueue},
		{"ReserveEndsWithContext", s.testReserveEndsWithContext},
		{"CompleteOnce", s.testCompleteOnce},
		{"ExtendLeaseKeepsJob", s.testExtendLeaseKeepsJob},
		{"LapsedLeaseIsRedelivered", s.testLapsedLeaseIsRedelivered},
		{"LapsesUseUpAttempts", s.testLapsesUseUpAttempts},
		{"Release", s.testRelease},
		{"RetryThenDeadLetterThenRequeue", s.testRetryThenDeadLetterThenRequeue},
		{"FailNonRetryable", s.testFailNonRetryable},
		{"CancelQueued", s.testCancelQueued},
		{"CancelRunning", s.testCancelRunning},
		{"Events", s.testEvents},
		{"EventsWait", s.testEventsWait},
		{"DeadlineExpires", s.testDeadlineExpires},
		{"List", s.testList},
		{"QueueStats", s.testQueueStats},
		{"Workers", s.testWorkers},
		{"WorkerTTL", s.testWorkerTTL},
		{"Retention", s.testRetention},
		{"ConcurrentConsumers", s.testConcurrentConsumers},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			tc.fn(t)
		})
	}
}

// broker opens a broker for one test with the suite's defaults overridden by cfg.
func (s suite) broker(t *testing.T, cfg broker.Config) broker.Broker {
	t.Helper()
	if cfg.Lease == 0 {
		cfg.Lease = longLease
	}
	if cfg.Backoff == nil {
		cfg.Backoff = func(int) time.Duration { return 50 * time.Millisecond }
	}
	b := s.open(t, cfg)
	t.Cleanup(func() {
		if err := b.Close(); err != nil {
			t.Errorf("close: %v", err)
		}
	})
	return b
}

func ctxFor(t *testing.T) context.Context {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	t.Cleanup(cancel)
	return ctx
}

func newJob(model string) job.Job {
	return job.Job{
		Kind:  job.KindChat,
		Model: model,
		Owner: "key1",
		Input: json.RawMessage(`{"messages":[{"role":"user","content":"hi"}]}`),
	}
}

func enqueue(t *testing.T, b broker.Broker, j job.Job) job.Job {
	t.Helper()
	got, existing, err := b.Enqueue(ctxFor(t), j)
	if err != nil {
		t.Fatalf("enqueue: %v", err)
	}
	if existing {
		t.Fatalf("enqueue of %+v: existing = true, want a new job", j)
	}
	return got
}

// reserve reserves up to n jobs, failing the test if none arrive in patience.
func reserve(t *testing.T, b broker.Broker, worker string, n int, models ...string) []*broker.Lease {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), patience)
	defer cancel()
	ls, err := b.Reserve(ctx, worker, models, n)
	if err != nil {
		t.Fatalf("reserve %v: %v", models, err)
	}
	if len(ls) == 0 || len(ls) > n {
		t.Fatalf("reserve %v n=%d: got %d leases", models, n, len(ls))
	}
	return ls
}

// reserveNone checks that nothing is handed out for models within d.
func reserveNone(t *testing.T, b broker.Broker, d time.Duration, models ...string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), d)
	defer cancel()
	ls, err := b.Reserve(ctx, "w-none", models, 1)
	if len(ls) > 0 {
		t.Fatalf("reserve %v: got job %s, want none", models, ls[0].Job.ID)
	}
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("reserve %v with nothing queued: err = %v, want context.DeadlineExceeded", models, err)
	}
}

func get(t *testing.T, b broker.Broker, id string) job.Job {
	t.Helper()
	j, err := b.Get(ctxFor(t), id)
	if err != nil {
		t.Fatalf("get %s: %v", id, err)
	}
	return j
}

// eventually polls cond until it holds or patience runs out.
func eventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(patience)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("%s: did not happen within %v", what, patience)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func wantErr(t *testing.T, what string, err, want error) {
	t.Helper()
	if !errors.Is(err, want) {
		t.Fatalf("%s: err = %v, want %v", what, err, want)
	}
}

func statusesOf(evs []broker.Event) []job.Status {
	var out []job.Status
	for _, ev := range evs {
		if ev.Type != broker.EventStatus {
			continue
		}
		var se broker.StatusEvent
		if err := json.Unmarshal(ev.Data, &se); err != nil {
			panic(fmt.Sprintf("status event %s: bad data %q: %v", ev.ID, ev.Data, err))
		}
		out = append(out, se.Status)
	}
	return out
}

func allEvents(t *testing.T, b broker.Broker, id string) []broker.Event {
	t.Helper()
	evs, err := b.Events(ctxFor(t), id, "", 1000, 0)
	if err != nil {
		t.Fatalf("events %s: %v", id, err)
	}
	return evs
}

// lastStatus is the status of the last status event in the job's log.
func lastStatus(t *testing.T, b broker.Broker, id string) job.Status {
	t.Helper()
	st := statusesOf(allEvents(t, b, id))
	if len(st) == 0 {
		return ""
	}
	return st[len(st)-1]
}
