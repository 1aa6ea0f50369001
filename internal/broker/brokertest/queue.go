package brokertest

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/neovratz/neovratz/internal/broker"
	"github.com/neovratz/neovratz/internal/job"
)

func (s suite) testEnqueueGet(t *testing.T) {
	b := s.broker(t, broker.Config{})
	in := newJob("m1")
	in.Deadline = time.Now().Add(time.Hour)
	stored := enqueue(t, b, in)
	if stored.ID == "" || stored.Status != job.StatusQueued || stored.Priority != job.PriorityNormal ||
		stored.MaxAttempts != job.DefaultMaxAttempts || stored.CreatedAt.IsZero() {
		t.Fatalf("enqueue did not fill defaults: %+v", stored)
	}
	got := get(t, b, stored.ID)
	if got.ID != stored.ID || got.Kind != in.Kind || got.Model != in.Model || got.Owner != in.Owner ||
		got.Status != job.StatusQueued || got.Priority != job.PriorityNormal || got.Attempts != 0 ||
		got.MaxAttempts != job.DefaultMaxAttempts || string(got.Input) != string(in.Input) {
		t.Fatalf("get = %+v, want %+v", got, stored)
	}
	if d := got.CreatedAt.Sub(stored.CreatedAt); d < -time.Millisecond || d > time.Millisecond {
		t.Errorf("created_at = %v, want %v", got.CreatedAt, stored.CreatedAt)
	}
	if d := got.Deadline.Sub(in.Deadline); d < -time.Millisecond || d > time.Millisecond {
		t.Errorf("deadline = %v, want %v", got.Deadline, in.Deadline)
	}
	if got := lastStatus(t, b, stored.ID); got != job.StatusQueued {
		t.Errorf("event log after enqueue ends with status %q, want queued", got)
	}

	_, err := b.Get(ctxFor(t), "job_doesnotexist")
	wantErr(t, "get unknown", err, broker.ErrNotFound)
}

func (s suite) testEnqueueInvalid(t *testing.T) {
	b := s.broker(t, broker.Config{})
	tests := []struct {
		name   string
		mutate func(*job.Job)
	}{
		{"no model", func(j *job.Job) { j.Model = "" }},
		{"bad kind", func(j *job.Job) { j.Kind = "dance" }},
		{"bad priority", func(j *job.Job) { j.Priority = "urgent" }},
		{"bad input", func(j *job.Job) { j.Input = []byte(`{"a":`) }},
		{"bad id", func(j *job.Job) { j.ID = "has space" }},
		{"too many attempts", func(j *job.Job) { j.MaxAttempts = 1000 }},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			j := newJob("m1")
			tc.mutate(&j)
			_, _, err := b.Enqueue(ctxFor(t), j)
			wantErr(t, "enqueue", err, job.ErrInvalid)
		})
	}
	stats, err := b.QueueStats(ctxFor(t))
	if err != nil {
		t.Fatal(err)
	}
	for _, q := range stats {
		if q.Depth != 0 {
			t.Errorf("invalid jobs were queued: %+v", q)
		}
	}
}

func (s suite) testIdempotency(t *testing.T) {
	b := s.broker(t, broker.Config{})
	j := newJob("m1")
	j.IdempotencyKey = "req-42"
	first := enqueue(t, b, j)

	again, existing, err := b.Enqueue(ctxFor(t), j)
	if err != nil {
		t.Fatal(err)
	}
	if !existing || again.ID != first.ID {
		t.Fatalf("resubmission: existing=%v id=%s, want existing=true id=%s", existing, again.ID, first.ID)
	}

	other := j
	other.Owner = "key2"
	second := enqueue(t, b, other)
	if second.ID == first.ID {
		t.Fatal("another owner's job with the same idempotency key got the first owner's job")
	}

	stats, err := b.QueueStats(ctxFor(t))
	if err != nil {
		t.Fatal(err)
	}
	if len(stats) != 1 || stats[0].Depth != 2 {
		t.Fatalf("queue stats = %+v, want depth 2 for m1", stats)
	}
}

func (s suite) testQueueCap(t *testing.T) {
	b := s.broker(t, broker.Config{QueueCap: 2})
	enqueue(t, b, newJob("m1"))
	enqueue(t, b, newJob("m1"))
	_, _, err := b.Enqueue(ctxFor(t), newJob("m1"))
	wantErr(t, "third enqueue", err, broker.ErrQueueFull)
	var qf *broker.QueueFullError
	if !errors.As(err, &qf) || qf.Model != "m1" || qf.Cap != 2 {
		t.Fatalf("err = %#v, want *QueueFullError{m1, 2}", err)
	}
	enqueue(t, b, newJob("m2")) // another model has its own queue

	reserve(t, b, "w1", 1, "m1") // a running job no longer counts against the cap
	enqueue(t, b, newJob("m1"))
}

func (s suite) testPriorityThenFIFO(t *testing.T) {
	b := s.broker(t, broker.Config{})
	order := []job.Priority{job.PriorityLow, job.PriorityNormal, job.PriorityHigh, job.PriorityNormal, job.PriorityHigh, job.PriorityLow}
	byPriority := map[job.Priority][]string{}
	for _, p := range order {
		j := newJob("m1")
		j.Priority = p
		stored := enqueue(t, b, j)
		byPriority[p] = append(byPriority[p], stored.ID)
	}
	var want []string
	for _, p := range job.Priorities {
		want = append(want, byPriority[p]...)
	}
	for i, id := range want {
		l := reserve(t, b, "w1", 1, "m1")[0]
		if l.Job.ID != id {
			t.Fatalf("reservation %d: got %s (%s), want %s", i, l.Job.ID, l.Job.Priority, id)
		}
	}
}

func (s suite) testReserveOnlyRequestedModels(t *testing.T) {
	b := s.broker(t, broker.Config{})
	jb := enqueue(t, b, newJob("mb"))
	reserveNone(t, b, 300*time.Millisecond, "ma")
	l := reserve(t, b, "w1", 1, "ma", "mb")[0]
	if l.Job.ID != jb.ID {
		t.Fatalf("got %s, want %s", l.Job.ID, jb.ID)
	}
}

func (s suite) testReserveN(t *testing.T) {
	b := s.broker(t, broker.Config{})
	ids := map[string]bool{}
	for range 5 {
		ids[enqueue(t, b, newJob("m1")).ID] = true
	}
	first := reserve(t, b, "w1", 3, "m1")
	if len(first) != 3 {
		t.Fatalf("reserve n=3 with 5 queued: got %d", len(first))
	}
	second := reserve(t, b, "w1", 3, "m1")
	if len(second) != 2 {
		t.Fatalf("reserve n=3 with 2 queued: got %d", len(second))
	}
	for _, l := range append(first, second...) {
		if !ids[l.Job.ID] {
			t.Fatalf("job %s handed out twice or never enqueued", l.Job.ID)
		}
		delete(ids, l.Job.ID)
		if l.Attempt != 1 || l.WorkerID != "w1" || l.Job.Status != job.StatusRunning || l.Job.Attempts != 1 ||
			l.Job.StartedAt.IsZero() || l.Until.IsZero() {
			t.Errorf("lease = %+v, want attempt 1, worker w1, running job with started_at", l)
		}
		got := get(t, b, l.Job.ID)
		if got.Status != job.StatusRunning || got.WorkerID != "w1" || got.Attempts != 1 {
			t.Errorf("get after reserve = %+v, want running on w1, attempt 1", got)
		}
	}
}

func (s suite) testReserveBlocksUntilEnqueue(t *testing.T) {
	b := s.broker(t, broker.Config{})
	type result struct {
		ls  []*broker.Lease
		err error
	}
	done := make(chan result, 1)
	go func() {
		ctx, cancel := context.WithTimeout(context.Background(), patience)
		defer cancel()
		ls, err := b.Reserve(ctx, "w1", []string{"m1"}, 1)
		done <- result{ls, err}
	}()
	select {
	case r := <-done:
		t.Fatalf("reserve returned before any enqueue: %v, %v", r.ls, r.err)
	case <-time.After(200 * time.Millisecond):
	}
	j := enqueue(t, b, newJob("m1"))
	r := <-done
	if r.err != nil || len(r.ls) != 1 || r.ls[0].Job.ID != j.ID {
		t.Fatalf("blocked reserve after enqueue: %v, %v; want job %s", r.ls, r.err, j.ID)
	}
}

func (s suite) testReserveEndsWithContext(t *testing.T) {
	b := s.broker(t, broker.Config{})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() {
		_, err := b.Reserve(ctx, "w1", []string{"m1"}, 1)
		done <- err
	}()
	time.Sleep(100 * time.Millisecond)
	cancel()
	select {
	case err := <-done:
		wantErr(t, "reserve after cancel", err, context.Canceled)
	case <-time.After(patience):
		t.Fatal("reserve did not return after its context was canceled")
	}
	// The canceled reservation must not have swallowed a job.
	j := enqueue(t, b, newJob("m1"))
	if l := reserve(t, b, "w2", 1, "m1")[0]; l.Job.ID != j.ID {
		t.Fatalf("got %s, want %s", l.Job.ID, j.ID)
	}
}

func (s suite) testConcurrentConsumers(t *testing.T) {
	b := s.broker(t, broker.Config{})
	const jobs, consumers = 200, 4
	for range jobs {
		enqueue(t, b, newJob("m1"))
	}
	var mu sync.Mutex
	completed := map[string]int{}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	var wg sync.WaitGroup
	for c := range consumers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			worker := "w" + string(rune('a'+c))
			for {
				mu.Lock()
				n := 0
				for _, v := range completed {
					n += v
				}
				mu.Unlock()
				if n >= jobs {
					return
				}
				rctx, rcancel := context.WithTimeout(ctx, 500*time.Millisecond)
				ls, err := b.Reserve(rctx, worker, []string{"m1"}, 2)
				rcancel()
				if err != nil {
					if ctx.Err() != nil {
						return
					}
					continue
				}
				for _, l := range ls {
					if err := b.Complete(ctx, l, []byte(`{"ok":true}`)); err != nil {
						t.Errorf("complete %s: %v", l.Job.ID, err)
						return
					}
					mu.Lock()
					completed[l.Job.ID]++
					mu.Unlock()
				}
			}
		}()
	}
	wg.Wait()
	if len(completed) != jobs {
		t.Fatalf("completed %d distinct jobs, want %d", len(completed), jobs)
	}
	for id, n := range completed {
		if n != 1 {
			t.Errorf("job %s completed %d times", id, n)
		}
	}
}
