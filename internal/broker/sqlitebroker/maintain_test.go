package sqlitebroker

import (
	"context"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/neovratz/neovratz/internal/broker"
	"github.com/neovratz/neovratz/internal/job"
)

// TestRetentionBacklog checks that a maintenance pass reports a full batch, so that the loop
// keeps deleting until the backlog is gone instead of waiting a tick per batch.
func TestRetentionBacklog(t *testing.T) {
	var (
		mu  sync.Mutex
		now = time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC)
	)
	clock := func() time.Time {
		mu.Lock()
		defer mu.Unlock()
		return now
	}
	b, err := Open(context.Background(), filepath.Join(t.TempDir(), "broker.db"),
		broker.Config{Retention: time.Hour, Now: clock}, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	ctx := context.Background()
	const jobs = 2*forgetBatch + 50
	for range jobs {
		j, _, err := b.Enqueue(ctx, job.Job{Kind: job.KindChat, Model: "m1", IdempotencyKey: "k" + job.NewID()})
		if err != nil {
			t.Fatal(err)
		}
		if _, err := b.Cancel(ctx, j.ID); err != nil {
			t.Fatal(err)
		}
	}
	mu.Lock()
	now = now.Add(2 * time.Hour)
	mu.Unlock()

	// Drive passes by hand until one reports no backlog (the background loop may run some of
	// its own meanwhile); then nothing past retention may be left.
	var m maintainer
	passes := 0
	for {
		backlog, err := m.run(ctx, b)
		if err != nil {
			t.Fatal(err)
		}
		passes++
		if !backlog {
			break
		}
		if passes > jobs {
			t.Fatal("the backlog never ends")
		}
	}
	left, _, err := b.List(ctx, broker.ListFilter{})
	if err != nil {
		t.Fatal(err)
	}
	if len(left) != 0 {
		t.Fatalf("%d jobs left after retention", len(left))
	}
	var keys int
	if err := b.db.QueryRowContext(ctx, "SELECT count(*) FROM idempotency").Scan(&keys); err != nil {
		t.Fatal(err)
	}
	if keys != 0 {
		t.Errorf("%d idempotency keys left after retention", keys)
	}
	var events int
	if err := b.db.QueryRowContext(ctx, "SELECT count(*) FROM events").Scan(&events); err != nil {
		t.Fatal(err)
	}
	if events != 0 {
		t.Errorf("%d events left after retention", events)
	}
}

func TestAfterSaturates(t *testing.T) {
	tests := []struct {
		ns   int64
		d    time.Duration
		want int64
	}{
		{10, 5, 15},
		{10, -5, 5},
		{1 << 62, 1 << 62, 1<<63 - 1},
		{-1 << 62, -1<<62 - 10, -1 << 63},
	}
	for _, tc := range tests {
		if got := after(tc.ns, tc.d); got != tc.want {
			t.Errorf("after(%d, %d) = %d, want %d", tc.ns, tc.d, got, tc.want)
		}
	}
}
