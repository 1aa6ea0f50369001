package brokertest

import (
	"context"
	"encoding/json"
	"slices"
	"testing"
	"time"

	"github.com/neovratz/neovratz/internal/broker"
	"github.com/neovratz/neovratz/internal/job"
)

func (s suite) testCompleteOnce(t *testing.T) {
	b := s.broker(t, broker.Config{})
	j := enqueue(t, b, newJob("m1"))
	l := reserve(t, b, "w1", 1, "m1")[0]
	if err := b.Complete(ctxFor(t), l, json.RawMessage(`{"text":"hello"}`)); err != nil {
		t.Fatalf("complete: %v", err)
	}
	got := get(t, b, j.ID)
	if got.Status != job.StatusSucceeded || string(got.Result) != `{"text":"hello"}` || got.FinishedAt.IsZero() {
		t.Fatalf("after complete: %+v", got)
	}
	wantErr(t, "second complete", b.Complete(ctxFor(t), l, json.RawMessage(`{}`)), broker.ErrLeaseLost)
	wantErr(t, "fail after complete", b.Fail(ctxFor(t), l, job.Error{Message: "x"}), broker.ErrLeaseLost)
	wantErr(t, "extend after complete", b.ExtendLease(ctxFor(t), l), broker.ErrLeaseLost)
	if got := get(t, b, j.ID); got.Status != job.StatusSucceeded {
		t.Fatalf("status changed after a refused call: %s", got.Status)
	}
	if st := lastStatus(t, b, j.ID); st != job.StatusSucceeded {
		t.Fatalf("event log ends with %q, want succeeded", st)
	}
	_, err := b.Cancel(ctxFor(t), j.ID)
	wantErr(t, "cancel finished job", err, broker.ErrFinished)
}

func (s suite) testExtendLeaseKeepsJob(t *testing.T) {
	// A longer lease than the other lease tests, renewed five times per lease, so that a stall
	// of a loaded machine (race detector, two cores) cannot make the holder miss a renewal.
	const lease = 1500 * time.Millisecond
	b := s.broker(t, broker.Config{Lease: lease})
	j := enqueue(t, b, newJob("m1"))
	l := reserve(t, b, "w1", 1, "m1")[0]
	firstUntil := l.Until
	// Hold the job for two lease lengths by extending it; nobody else may get it.
	stop := time.Now().Add(2 * lease)
	for time.Now().Before(stop) {
		time.Sleep(lease / 5)
		if err := b.ExtendLease(ctxFor(t), l); err != nil {
			t.Fatalf("extend: %v", err)
		}
	}
	if !l.Until.After(firstUntil) {
		t.Errorf("lease until = %v after extending, want later than %v", l.Until, firstUntil)
	}
	reserveNone(t, b, lease/5, "m1")
	if err := b.Complete(ctxFor(t), l, json.RawMessage(`{}`)); err != nil {
		t.Fatalf("complete after extending: %v", err)
	}
	if got := get(t, b, j.ID); got.Attempts != 1 || got.Status != job.StatusSucceeded {
		t.Fatalf("job = %+v, want succeeded after 1 attempt", got)
	}
}

func (s suite) testLapsedLeaseIsRedelivered(t *testing.T) {
	b := s.broker(t, broker.Config{Lease: shortLease})
	j := enqueue(t, b, newJob("m1"))
	old := reserve(t, b, "w1", 1, "m1")[0]
	// w1 goes silent. The job comes back once the lease lapses, with the attempt counted.
	again := reserve(t, b, "w2", 1, "m1")[0]
	if again.Job.ID != j.ID || again.Attempt != 2 || again.WorkerID != "w2" {
		t.Fatalf("redelivery = %+v, want job %s attempt 2 on w2", again, j.ID)
	}
	if time.Since(old.Job.StartedAt) < shortLease/2 {
		t.Errorf("redelivered after %v, before the lease (%v) lapsed", time.Since(old.Job.StartedAt), shortLease)
	}
	wantErr(t, "stale complete", b.Complete(ctxFor(t), old, json.RawMessage(`{"stale":true}`)), broker.ErrLeaseLost)
	wantErr(t, "stale extend", b.ExtendLease(ctxFor(t), old), broker.ErrLeaseLost)
	wantErr(t, "stale fail", b.Fail(ctxFor(t), old, job.Error{Message: "x", Retryable: true}), broker.ErrLeaseLost)
	wantErr(t, "stale release", b.Release(ctxFor(t), old), broker.ErrLeaseLost)
	_, err := b.AppendEvent(ctxFor(t), old, broker.Event{Type: broker.EventDelta, Data: json.RawMessage(`"x"`)})
	wantErr(t, "stale append", err, broker.ErrLeaseLost)

	if err := b.Complete(ctxFor(t), again, json.RawMessage(`{"fresh":true}`)); err != nil {
		t.Fatalf("complete by the new holder: %v", err)
	}
	got := get(t, b, j.ID)
	if got.Status != job.StatusSucceeded || string(got.Result) != `{"fresh":true}` || got.Attempts != 2 {
		t.Fatalf("job = %+v, want succeeded with the new holder's result after 2 attempts", got)
	}
}

func (s suite) testLapsesUseUpAttempts(t *testing.T) {
	b := s.broker(t, broker.Config{Lease: shortLease})
	in := newJob("m1")
	in.MaxAttempts = 1
	j := enqueue(t, b, in)
	reserve(t, b, "w1", 1, "m1")
	eventually(t, "job fails after its only lease lapses", func() bool {
		return get(t, b, j.ID).Status == job.StatusFailed
	})
	dead, err := b.DeadLetters(ctxFor(t), 10)
	if err != nil {
		t.Fatal(err)
	}
	if len(dead) != 1 || dead[0].ID != j.ID {
		t.Fatalf("dead letters = %v, want [%s]", dead, j.ID)
	}
	if got := get(t, b, j.ID); got.Error == nil || got.Error.Message == "" {
		t.Errorf("failed job has no error: %+v", got)
	}
	if st := lastStatus(t, b, j.ID); st != job.StatusFailed {
		t.Errorf("event log ends with %q, want failed", st)
	}
}

func (s suite) testRelease(t *testing.T) {
	b := s.broker(t, broker.Config{})
	j := enqueue(t, b, newJob("m1"))
	l := reserve(t, b, "w1", 1, "m1")[0]
	if err := b.Release(ctxFor(t), l); err != nil {
		t.Fatalf("release: %v", err)
	}
	got := get(t, b, j.ID)
	if got.Status != job.StatusQueued || got.Attempts != 0 {
		t.Fatalf("after release: status %s attempts %d, want queued with 0 attempts", got.Status, got.Attempts)
	}
	wantErr(t, "complete after release", b.Complete(ctxFor(t), l, nil), broker.ErrLeaseLost)
	l2 := reserve(t, b, "w2", 1, "m1")[0]
	if l2.Job.ID != j.ID || l2.Attempt != 1 {
		t.Fatalf("after release got %s attempt %d, want %s attempt 1", l2.Job.ID, l2.Attempt, j.ID)
	}
}

func (s suite) testRetryThenDeadLetterThenRequeue(t *testing.T) {
	b := s.broker(t, broker.Config{})
	in := newJob("m1")
	in.MaxAttempts = 2
	j := enqueue(t, b, in)

	l1 := reserve(t, b, "w1", 1, "m1")[0]
	if err := b.Fail(ctxFor(t), l1, job.Error{Code: "upstream", Message: "engine crashed", Retryable: true}); err != nil {
		t.Fatalf("fail: %v", err)
	}
	if got := get(t, b, j.ID); got.Status != job.StatusQueued || got.Attempts != 1 {
		t.Fatalf("after a retryable failure: %+v, want queued after 1 attempt", got)
	}
	l2 := reserve(t, b, "w1", 1, "m1")[0]
	if l2.Job.ID != j.ID || l2.Attempt != 2 {
		t.Fatalf("retry = %+v, want %s attempt 2", l2, j.ID)
	}
	if err := b.Fail(ctxFor(t), l2, job.Error{Code: "upstream", Message: "engine crashed again", Retryable: true}); err != nil {
		t.Fatalf("fail: %v", err)
	}
	got := get(t, b, j.ID)
	if got.Status != job.StatusFailed || got.Error == nil || got.Error.Message != "engine crashed again" {
		t.Fatalf("after attempts used up: %+v, want failed with the last error", got)
	}
	dead, err := b.DeadLetters(ctxFor(t), 10)
	if err != nil || len(dead) != 1 || dead[0].ID != j.ID {
		t.Fatalf("dead letters = %v, %v; want [%s]", dead, err, j.ID)
	}

	if _, err := b.Requeue(ctxFor(t), "job_notdead"); err == nil {
		t.Fatal("requeue of a job not in the dead-letter list succeeded")
	}
	rq, err := b.Requeue(ctxFor(t), j.ID)
	if err != nil {
		t.Fatalf("requeue: %v", err)
	}
	if rq.Status != job.StatusQueued || rq.Attempts != 0 {
		t.Fatalf("requeued job = %+v, want queued with 0 attempts", rq)
	}
	if dead, _ := b.DeadLetters(ctxFor(t), 10); len(dead) != 0 {
		t.Fatalf("dead letters after requeue = %v, want none", dead)
	}
	l3 := reserve(t, b, "w1", 1, "m1")[0]
	if err := b.Complete(ctxFor(t), l3, json.RawMessage(`{}`)); err != nil {
		t.Fatalf("complete after requeue: %v", err)
	}
	if got := get(t, b, j.ID); got.Status != job.StatusSucceeded {
		t.Fatalf("status = %s, want succeeded", got.Status)
	}
}

func (s suite) testFailNonRetryable(t *testing.T) {
	b := s.broker(t, broker.Config{})
	j := enqueue(t, b, newJob("m1"))
	l := reserve(t, b, "w1", 1, "m1")[0]
	if err := b.Fail(ctxFor(t), l, job.Error{Code: "bad_input", Message: "prompt too long"}); err != nil {
		t.Fatalf("fail: %v", err)
	}
	got := get(t, b, j.ID)
	if got.Status != job.StatusFailed || got.Attempts != 1 || got.Error == nil || got.Error.Code != "bad_input" || got.FinishedAt.IsZero() {
		t.Fatalf("after a non-retryable failure: %+v", got)
	}
	reserveNone(t, b, 300*time.Millisecond, "m1")
	if st := lastStatus(t, b, j.ID); st != job.StatusFailed {
		t.Errorf("event log ends with %q, want failed", st)
	}
}

func (s suite) testCancelQueued(t *testing.T) {
	b := s.broker(t, broker.Config{})
	j := enqueue(t, b, newJob("m1"))
	got, err := b.Cancel(ctxFor(t), j.ID)
	if err != nil || got.Status != job.StatusCanceled {
		t.Fatalf("cancel = %+v, %v; want canceled", got, err)
	}
	reserveNone(t, b, 300*time.Millisecond, "m1")
	if got := get(t, b, j.ID); got.Status != job.StatusCanceled || got.FinishedAt.IsZero() {
		t.Fatalf("job = %+v, want canceled with finished_at", got)
	}
	if st := lastStatus(t, b, j.ID); st != job.StatusCanceled {
		t.Errorf("event log ends with %q, want canceled", st)
	}
	_, err = b.Cancel(ctxFor(t), j.ID)
	wantErr(t, "second cancel", err, broker.ErrFinished)
	_, err = b.Cancel(ctxFor(t), "job_unknown")
	wantErr(t, "cancel unknown", err, broker.ErrNotFound)
	stats, err := b.QueueStats(ctxFor(t))
	if err != nil {
		t.Fatal(err)
	}
	for _, q := range stats {
		if q.Depth != 0 || q.Running != 0 {
			t.Errorf("queue stats after cancel = %+v, want empty", q)
		}
	}
}

func (s suite) testCancelRunning(t *testing.T) {
	b := s.broker(t, broker.Config{})
	j := enqueue(t, b, newJob("m1"))
	l := reserve(t, b, "w1", 1, "m1")[0]
	other := enqueue(t, b, newJob("m1"))
	// Both brokers tell a worker which of its jobs were canceled in one call (the worker's
	// CancelChecker); it is not part of the contract, so a broker without it is passed over.
	cc, checks := b.(interface {
		Canceled(ctx context.Context, ids []string) ([]string, error)
	})
	if checks {
		if got, err := cc.Canceled(ctxFor(t), []string{j.ID, other.ID, "no-such-job"}); err != nil || len(got) != 0 {
			t.Fatalf("canceled before the cancel = %v, %v; want none", got, err)
		}
	}
	if _, err := b.Cancel(ctxFor(t), j.ID); err != nil {
		t.Fatalf("cancel running: %v", err)
	}
	if checks {
		if got, err := cc.Canceled(ctxFor(t), []string{j.ID, other.ID, "no-such-job"}); err != nil || !slices.Equal(got, []string{j.ID}) {
			t.Fatalf("canceled = %v, %v; want [%s]", got, err, j.ID)
		}
	}
	wantErr(t, "extend canceled", b.ExtendLease(ctxFor(t), l), broker.ErrCanceled)
	_, err := b.AppendEvent(ctxFor(t), l, broker.Event{Type: broker.EventDelta, Data: json.RawMessage(`"x"`)})
	wantErr(t, "append to canceled", err, broker.ErrCanceled)
	wantErr(t, "complete canceled", b.Complete(ctxFor(t), l, json.RawMessage(`{}`)), broker.ErrCanceled)
	if got := get(t, b, j.ID); got.Status != job.StatusCanceled {
		t.Fatalf("status = %s, want canceled", got.Status)
	}
	if st := lastStatus(t, b, j.ID); st != job.StatusCanceled {
		t.Errorf("event log ends with %q, want canceled", st)
	}
}

func (s suite) testDeadlineExpires(t *testing.T) {
	b := s.broker(t, broker.Config{})
	in := newJob("m1")
	in.Deadline = time.Now().Add(300 * time.Millisecond)
	j := enqueue(t, b, in)
	time.Sleep(400 * time.Millisecond)
	reserveNone(t, b, 300*time.Millisecond, "m1")
	eventually(t, "job expires", func() bool { return get(t, b, j.ID).Status == job.StatusExpired })
	if st := lastStatus(t, b, j.ID); st != job.StatusExpired {
		t.Errorf("event log ends with %q, want expired", st)
	}
}
