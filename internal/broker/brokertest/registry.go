package brokertest

import (
	"encoding/json"
	"slices"
	"testing"
	"time"

	"github.com/neovratz/neovratz/internal/broker"
	"github.com/neovratz/neovratz/internal/job"
)

func (s suite) testList(t *testing.T) {
	b := s.broker(t, broker.Config{})
	var mine []string // newest first
	for i := range 5 {
		j := newJob("m1")
		j.Owner = "alice"
		mine = slices.Insert(mine, 0, enqueue(t, b, j).ID)
		if i == 1 {
			other := newJob("m1")
			other.Owner = "bob"
			enqueue(t, b, other)
		}
		time.Sleep(2 * time.Millisecond) // distinct creation times
	}

	var got []string
	cursor := ""
	for pages := 0; ; pages++ {
		if pages > 10 {
			t.Fatal("paging does not end")
		}
		jobs, next, err := b.List(ctxFor(t), broker.ListFilter{Owner: "alice", Limit: 2, Cursor: cursor})
		if err != nil {
			t.Fatalf("list: %v", err)
		}
		if len(jobs) > 2 {
			t.Fatalf("limit 2 returned %d jobs", len(jobs))
		}
		for _, j := range jobs {
			got = append(got, j.ID)
		}
		if next == "" {
			break
		}
		cursor = next
	}
	if !slices.Equal(got, mine) {
		t.Fatalf("alice's jobs = %v, want %v (newest first)", got, mine)
	}

	all, _, err := b.List(ctxFor(t), broker.ListFilter{})
	if err != nil || len(all) != 6 {
		t.Fatalf("list all = %d jobs, %v; want 6", len(all), err)
	}

	// Status filter.
	if _, err := b.Cancel(ctxFor(t), mine[0]); err != nil {
		t.Fatal(err)
	}
	canceled, _, err := b.List(ctxFor(t), broker.ListFilter{Owner: "alice", Status: job.StatusCanceled})
	if err != nil || len(canceled) != 1 || canceled[0].ID != mine[0] {
		t.Fatalf("canceled jobs = %v, %v; want [%s]", canceled, err, mine[0])
	}
	queued, _, err := b.List(ctxFor(t), broker.ListFilter{Owner: "alice", Status: job.StatusQueued})
	if err != nil || len(queued) != 4 {
		t.Fatalf("queued jobs = %d, %v; want 4", len(queued), err)
	}
	if _, _, err := b.List(ctxFor(t), broker.ListFilter{Cursor: "not-a-cursor!"}); err == nil {
		t.Error("list with a garbage cursor succeeded")
	}
}

func (s suite) testQueueStats(t *testing.T) {
	b := s.broker(t, broker.Config{})
	for range 3 {
		enqueue(t, b, newJob("m1"))
	}
	enqueue(t, b, newJob("m2"))
	reserve(t, b, "w1", 1, "m1")
	time.Sleep(50 * time.Millisecond)
	stats, err := b.QueueStats(ctxFor(t))
	if err != nil {
		t.Fatal(err)
	}
	if len(stats) != 2 || stats[0].Model != "m1" || stats[1].Model != "m2" {
		t.Fatalf("stats = %+v, want m1 and m2 sorted", stats)
	}
	if q := stats[0]; q.Depth != 2 || q.Running != 1 || q.OldestQueuedAge < 50*time.Millisecond || q.OldestQueuedAge > time.Minute {
		t.Errorf("m1 = %+v, want depth 2, running 1, oldest age ≥ 50ms", q)
	}
	if q := stats[1]; q.Depth != 1 || q.Running != 0 {
		t.Errorf("m2 = %+v, want depth 1, running 0", q)
	}
}

func (s suite) testWorkers(t *testing.T) {
	b := s.broker(t, broker.Config{})
	w := broker.WorkerInfo{
		ID: "w-b", Hostname: "gpu1", Version: "dev", Models: []string{"m1", "m2"}, Slots: 4,
		Engine: "sim", Hardware: "cpu", MetricsAddr: "10.0.0.1:9100", StartedAt: time.Now().UTC(),
	}
	if err := b.RegisterWorker(ctxFor(t), w); err != nil {
		t.Fatal(err)
	}
	w2 := w
	w2.ID = "w-a"
	if err := b.RegisterWorker(ctxFor(t), w2); err != nil {
		t.Fatal(err)
	}
	if err := b.HeartbeatWorker(ctxFor(t), "w-b"); err != nil {
		t.Fatal(err)
	}
	ws, err := b.Workers(ctxFor(t))
	if err != nil {
		t.Fatal(err)
	}
	if len(ws) != 2 || ws[0].ID != "w-a" || ws[1].ID != "w-b" {
		t.Fatalf("workers = %+v, want w-a, w-b", ws)
	}
	got := ws[1]
	if got.Hostname != w.Hostname || got.Version != w.Version || !slices.Equal(got.Models, w.Models) || got.Slots != 4 ||
		got.Engine != "sim" || got.Hardware != "cpu" || got.MetricsAddr != w.MetricsAddr || got.LastHeartbeat.IsZero() {
		t.Fatalf("worker = %+v, want %+v", got, w)
	}
	if err := b.DeregisterWorker(ctxFor(t), "w-a"); err != nil {
		t.Fatal(err)
	}
	ws, _ = b.Workers(ctxFor(t))
	if len(ws) != 1 || ws[0].ID != "w-b" {
		t.Fatalf("workers after deregister = %+v", ws)
	}
	wantErr(t, "heartbeat of a deregistered worker", b.HeartbeatWorker(ctxFor(t), "w-a"), broker.ErrNotFound)
}

func (s suite) testWorkerTTL(t *testing.T) {
	b := s.broker(t, broker.Config{WorkerTTL: 300 * time.Millisecond})
	if err := b.RegisterWorker(ctxFor(t), broker.WorkerInfo{ID: "w1", Models: []string{"m1"}, Slots: 1}); err != nil {
		t.Fatal(err)
	}
	eventually(t, "silent worker leaves the registry", func() bool {
		ws, err := b.Workers(ctxFor(t))
		return err == nil && len(ws) == 0
	})
	wantErr(t, "heartbeat after ttl", b.HeartbeatWorker(ctxFor(t), "w1"), broker.ErrNotFound)
}

func (s suite) testRetention(t *testing.T) {
	b := s.broker(t, broker.Config{Retention: 500 * time.Millisecond})
	waiting := newJob("m1")
	waiting.Priority = job.PriorityLow
	keep := enqueue(t, b, waiting)
	urgent := newJob("m1")
	urgent.Priority = job.PriorityHigh
	urgent.IdempotencyKey = "once"
	done := enqueue(t, b, urgent)
	l := reserve(t, b, "w1", 1, "m1")[0]
	if l.Job.ID != done.ID {
		t.Fatalf("reserved %s, want the high-priority job %s", l.Job.ID, done.ID)
	}
	if err := b.Complete(ctxFor(t), l, json.RawMessage(`{}`)); err != nil {
		t.Fatal(err)
	}
	eventually(t, "finished job is forgotten after retention", func() bool {
		_, err := b.Get(ctxFor(t), done.ID)
		return err != nil
	})
	_, err := b.Get(ctxFor(t), done.ID)
	wantErr(t, "get forgotten job", err, broker.ErrNotFound)
	_, err = b.Events(ctxFor(t), done.ID, "", 10, 0)
	wantErr(t, "events of forgotten job", err, broker.ErrNotFound)
	// Its idempotency key is forgotten with it: the same request is a new job now.
	again, existing, err := b.Enqueue(ctxFor(t), urgent)
	if err != nil || existing || again.ID == done.ID {
		t.Fatalf("resubmission after retention = %s existing=%v, %v; want a new job", again.ID, existing, err)
	}
	// Unfinished jobs are kept however old.
	if got := get(t, b, keep.ID); got.Status != job.StatusQueued {
		t.Fatalf("queued job = %+v, want still queued", got)
	}
}
