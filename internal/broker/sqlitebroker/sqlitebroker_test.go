package sqlitebroker_test

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/neovratz/neovratz/internal/broker"
	"github.com/neovratz/neovratz/internal/broker/brokertest"
	"github.com/neovratz/neovratz/internal/broker/sqlitebroker"
	"github.com/neovratz/neovratz/internal/job"
)

func TestConformance(t *testing.T) {
	brokertest.Run(t, func(t *testing.T, cfg broker.Config) broker.Broker {
		return openAt(t, filepath.Join(t.TempDir(), "broker.db"), cfg)
	})
}

// openAt opens the broker at path; the test closes it (Close is idempotent, so a test may close
// it earlier to simulate a stop).
func openAt(t *testing.T, path string, cfg broker.Config) *sqlitebroker.Broker {
	t.Helper()
	b, err := sqlitebroker.Open(context.Background(), path, cfg, nil)
	if err != nil {
		t.Fatalf("open: %v", err)
	}
	t.Cleanup(func() { _ = b.Close() })
	return b
}

// clock is an injected clock that the test moves by hand.
type clock struct {
	mu    sync.Mutex
	now   time.Time
	calls atomic.Int64
}

func newClock() *clock { return &clock{now: time.Date(2030, 1, 2, 3, 4, 5, 6, time.UTC)} }

func (c *clock) Now() time.Time {
	c.calls.Add(1)
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *clock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = c.now.Add(d)
}

func newJob(model string, p job.Priority) job.Job {
	return job.Job{Kind: job.KindChat, Model: model, Owner: "k1", Priority: p, Input: json.RawMessage(`{"prompt":"hi"}`)}
}

func enqueue(t *testing.T, b broker.Broker, j job.Job) job.Job {
	t.Helper()
	stored, _, err := b.Enqueue(context.Background(), j)
	if err != nil {
		t.Fatalf("enqueue: %v", err)
	}
	return stored
}

func reserve(t *testing.T, b broker.Broker, d time.Duration, models ...string) (*broker.Lease, error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), d)
	defer cancel()
	ls, err := b.Reserve(ctx, "w1", models, 1)
	if err != nil {
		return nil, err
	}
	return ls[0], nil
}

func TestReopenKeepsQueuedJobs(t *testing.T) {
	path := filepath.Join(t.TempDir(), "broker.db")
	b := openAt(t, path, broker.Config{})
	low := enqueue(t, b, newJob("m1", job.PriorityLow))
	high := enqueue(t, b, newJob("m1", job.PriorityHigh))
	normal := enqueue(t, b, newJob("m1", job.PriorityNormal))
	if err := b.Close(); err != nil {
		t.Fatalf("close: %v", err)
	}
	if _, err := b.Get(context.Background(), low.ID); !errors.Is(err, broker.ErrClosed) {
		t.Fatalf("get after close: err = %v, want ErrClosed", err)
	}

	b = openAt(t, path, broker.Config{})
	for _, want := range []job.Job{high, normal, low} {
		l, err := reserve(t, b, 5*time.Second, "m1")
		if err != nil {
			t.Fatalf("reserve after reopen: %v", err)
		}
		if l.Job.ID != want.ID || l.Job.Priority != want.Priority {
			t.Fatalf("after reopen got %s (%s), want %s (%s)", l.Job.ID, l.Job.Priority, want.ID, want.Priority)
		}
		if !l.Job.CreatedAt.Equal(want.CreatedAt) || string(l.Job.Input) != string(want.Input) {
			t.Errorf("job after reopen = %+v, want %+v", l.Job, want)
		}
	}
	// New jobs queue behind the old ones: the FIFO sequence continues across a reopen.
	first := enqueue(t, b, newJob("m2", job.PriorityNormal))
	second := enqueue(t, b, newJob("m2", job.PriorityNormal))
	if l, err := reserve(t, b, 5*time.Second, "m2"); err != nil || l.Job.ID != first.ID {
		t.Fatalf("reserve m2 = %v, %v; want %s before %s", l, err, first.ID, second.ID)
	}
}

func TestCrashedHolderIsRedelivered(t *testing.T) {
	path := filepath.Join(t.TempDir(), "broker.db")
	clk := newClock()
	cfg := broker.Config{Lease: time.Minute, Now: clk.Now}
	b := openAt(t, path, cfg)
	j := enqueue(t, b, newJob("m1", job.PriorityNormal))
	old, err := reserve(t, b, 5*time.Second, "m1")
	if err != nil {
		t.Fatal(err)
	}
	// The process dies with the job running: no Complete, no Release.
	if err := b.Close(); err != nil {
		t.Fatal(err)
	}

	// Back before the lease lapsed: the holder might still be working on it (a remote worker).
	clk.Advance(30 * time.Second)
	b = openAt(t, path, cfg)
	if got, err := b.Get(context.Background(), j.ID); err != nil || got.Status != job.StatusRunning {
		t.Fatalf("job within its lease after reopen = %+v, %v; want running", got, err)
	}
	if _, err := reserve(t, b, 300*time.Millisecond, "m1"); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("reserve within the lease: err = %v, want DeadlineExceeded", err)
	}
	if err := b.Close(); err != nil {
		t.Fatal(err)
	}

	// Back after the lease lapsed: the job is delivered again, with the attempt counted.
	clk.Advance(time.Minute)
	b = openAt(t, path, cfg)
	again, err := reserve(t, b, 5*time.Second, "m1")
	if err != nil {
		t.Fatalf("reserve after the lease lapsed: %v", err)
	}
	if again.Job.ID != j.ID || again.Attempt != 2 {
		t.Fatalf("redelivery = job %s attempt %d, want %s attempt 2", again.Job.ID, again.Attempt, j.ID)
	}
	if err := b.Complete(context.Background(), old, nil); !errors.Is(err, broker.ErrLeaseLost) {
		t.Fatalf("complete by the dead holder: err = %v, want ErrLeaseLost", err)
	}
	if err := b.Complete(context.Background(), again, json.RawMessage(`{"ok":true}`)); err != nil {
		t.Fatalf("complete by the new holder: %v", err)
	}
}

func TestOpenRejectsWhatIsNotABrokerDatabase(t *testing.T) {
	dir := t.TempDir()
	write := func(name string, data []byte) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, data, 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	foreign := filepath.Join(dir, "foreign.db")
	func() {
		db, err := sql.Open("sqlite", foreign)
		if err != nil {
			t.Fatal(err)
		}
		defer db.Close()
		if _, err := db.Exec("CREATE TABLE notes (body TEXT)"); err != nil {
			t.Fatal(err)
		}
	}()
	corrupt := write("corrupt.db", append([]byte("SQLite format 3\x00"), make([]byte, 4096)...))

	tests := []struct {
		name, path  string
		notDatabase bool   // errors.Is(err, ErrNotDatabase)
		mention     string // the error mentions this
	}{
		{"text file", write("notes.txt", []byte("hello, this is not a database\n")), true, "not an SQLite database"},
		{"binary junk", write("junk.bin", make([]byte, 8192)), true, "not an SQLite database"},
		{"another application's database", foreign, true, "no neovratz schema"},
		{"corrupt database", corrupt, true, "not a neovratz broker database"},
		{"directory", dir, false, "is a directory"},
		{"missing directory", filepath.Join(dir, "nope", "broker.db"), false, "database directory"},
		{"empty path", "", false, "no database path"},
		{"memory", ":memory:", false, "file"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			b, err := sqlitebroker.Open(context.Background(), tc.path, broker.Config{}, nil)
			if err == nil {
				b.Close()
				t.Fatal("open succeeded")
			}
			if got := errors.Is(err, sqlitebroker.ErrNotDatabase); got != tc.notDatabase {
				t.Errorf("errors.Is(err, ErrNotDatabase) = %v, want %v (err: %v)", got, tc.notDatabase, err)
			}
			if !strings.Contains(err.Error(), tc.mention) || !strings.Contains(err.Error(), tc.path) {
				t.Errorf("err = %q, want it to mention %q and the path", err, tc.mention)
			}
		})
	}

	t.Run("empty file", func(t *testing.T) {
		b := openAt(t, write("empty.db", nil), broker.Config{})
		enqueue(t, b, newJob("m1", job.PriorityNormal))
	})
	t.Run("newer schema", func(t *testing.T) {
		path := filepath.Join(dir, "newer.db")
		b := openAt(t, path, broker.Config{})
		b.Close()
		db, err := sql.Open("sqlite", path)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := db.Exec("PRAGMA user_version = 99"); err != nil {
			t.Fatal(err)
		}
		db.Close()
		_, err = sqlitebroker.Open(context.Background(), path, broker.Config{}, nil)
		if err == nil || !strings.Contains(err.Error(), "newer") {
			t.Fatalf("open of a newer schema: err = %v, want one that says it is newer", err)
		}
	})
}

// TestReserveWaitsWithoutPolling checks that a blocked Reserve does not look at the database
// again until something wakes it. The clock counts the transactions: each reads it once.
func TestReserveWaitsWithoutPolling(t *testing.T) {
	clk := newClock()
	// A long lease keeps maintenance at its slowest: one pass (one clock reading) per 250ms.
	b := openAt(t, filepath.Join(t.TempDir(), "broker.db"), broker.Config{Lease: time.Hour, Now: clk.Now})

	type result struct {
		l   *broker.Lease
		err error
	}
	done := make(chan result, 1)
	go func() {
		l, err := reserve(t, b, time.Minute, "m1")
		done <- result{l, err}
	}()
	const idle = time.Second
	time.Sleep(50 * time.Millisecond)
	before := clk.calls.Load()
	time.Sleep(idle)
	// Maintenance alone reads the clock about idle/250ms = 4 times; a Reserve that polled
	// every 100ms or faster would add 10 or more.
	if n := clk.calls.Load() - before; n > 8 {
		t.Fatalf("the clock was read %d times in %v while Reserve waited: it polls", n, idle)
	}
	select {
	case r := <-done:
		t.Fatalf("reserve returned with nothing queued: %v, %v", r.l, r.err)
	default:
	}

	// Maintenance does not wake reservers for new jobs; only the enqueue's wake-up can.
	j := enqueue(t, b, newJob("m1", job.PriorityNormal))
	select {
	case r := <-done:
		if r.err != nil || r.l.Job.ID != j.ID {
			t.Fatalf("woken reserve = %v, %v; want job %s", r.l, r.err, j.ID)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("a blocked reserve did not return after an enqueue")
	}
}

// TestBackoffEndsOnInjectedClock checks that a job in backoff is handed out when the injected
// clock passes the end of the backoff, whatever real time says.
func TestBackoffEndsOnInjectedClock(t *testing.T) {
	clk := newClock()
	b := openAt(t, filepath.Join(t.TempDir(), "broker.db"), broker.Config{
		Now:     clk.Now,
		Backoff: func(int) time.Duration { return time.Hour },
	})
	j := enqueue(t, b, newJob("m1", job.PriorityNormal))
	l, err := reserve(t, b, 5*time.Second, "m1")
	if err != nil {
		t.Fatal(err)
	}
	if err := b.Fail(context.Background(), l, job.Error{Message: "flaky", Retryable: true}); err != nil {
		t.Fatal(err)
	}
	if _, err := reserve(t, b, 300*time.Millisecond, "m1"); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("reserve during the backoff: err = %v, want DeadlineExceeded", err)
	}

	done := make(chan *broker.Lease, 1)
	go func() {
		l, err := reserve(t, b, 10*time.Second, "m1")
		if err != nil {
			t.Errorf("reserve after the backoff: %v", err)
		}
		done <- l
	}()
	time.Sleep(100 * time.Millisecond) // let it block first
	clk.Advance(2 * time.Hour)
	if l := <-done; l == nil || l.Job.ID != j.ID || l.Attempt != 2 {
		t.Fatalf("after the backoff got %+v, want %s attempt 2", l, j.ID)
	}
}

func TestBadInput(t *testing.T) {
	b := openAt(t, filepath.Join(t.TempDir(), "broker.db"), broker.Config{})
	ctx := context.Background()
	j := enqueue(t, b, newJob("m1", job.PriorityNormal))
	l, err := reserve(t, b, 5*time.Second, "m1")
	if err != nil {
		t.Fatal(err)
	}

	if _, err := b.Events(ctx, j.ID, "not-an-id", 10, 0); err == nil || !strings.Contains(err.Error(), "invalid event id") {
		t.Errorf("events after a malformed id: err = %v", err)
	}
	if _, err := b.Reserve(ctx, "w1", nil, 1); err == nil {
		t.Error("reserve of no models succeeded")
	}
	if _, err := b.Reserve(ctx, "w1", []string{"m1"}, 0); err == nil {
		t.Error("reserve of 0 jobs succeeded")
	}
	if err := b.Complete(ctx, nil, nil); err == nil {
		t.Error("complete of a nil lease succeeded")
	}
	if _, err := b.AppendEvent(ctx, l, broker.Event{Type: broker.EventStatus, Data: json.RawMessage(`{}`)}); err == nil {
		t.Error("a worker appended a status event")
	}
	if _, err := b.AppendEvent(ctx, l, broker.Event{Type: broker.EventDelta, Data: json.RawMessage(`{"a":`)}); err == nil {
		t.Error("a worker appended invalid JSON")
	}
	if err := b.Complete(ctx, l, json.RawMessage(`not json`)); err == nil {
		t.Error("complete with an invalid JSON result succeeded")
	}
	forged := *l
	forged.Token = "garbage"
	if err := b.Complete(ctx, &forged, nil); !errors.Is(err, broker.ErrLeaseLost) {
		t.Errorf("complete with a forged token: err = %v, want ErrLeaseLost", err)
	}
	if _, _, err := b.List(ctx, broker.ListFilter{Status: "sleeping"}); err == nil {
		t.Error("list by an unknown status succeeded")
	}
	far := newJob("m1", job.PriorityNormal)
	far.Deadline = time.Date(3000, 1, 1, 0, 0, 0, 0, time.UTC)
	if _, _, err := b.Enqueue(ctx, far); !errors.Is(err, job.ErrInvalid) {
		t.Errorf("enqueue with a deadline in the year 3000: err = %v, want job.ErrInvalid", err)
	}
	dup := newJob("m1", job.PriorityNormal)
	dup.ID = j.ID
	if _, _, err := b.Enqueue(ctx, dup); err == nil || !strings.Contains(err.Error(), "already exists") {
		t.Errorf("enqueue of an existing id: err = %v", err)
	}
	if err := b.Complete(ctx, l, nil); err != nil {
		t.Errorf("the real holder could not complete after the refusals: %v", err)
	}
}

func TestCloseWakesWaiters(t *testing.T) {
	b := openAt(t, filepath.Join(t.TempDir(), "broker.db"), broker.Config{})
	j := enqueue(t, b, newJob("m1", job.PriorityNormal))
	errs := make(chan error, 2)
	go func() {
		_, err := b.Reserve(context.Background(), "w1", []string{"other"}, 1)
		errs <- err
	}()
	go func() {
		_, err := b.Events(context.Background(), j.ID, "999999", 10, time.Minute)
		errs <- err
	}()
	time.Sleep(100 * time.Millisecond)
	if err := b.Close(); err != nil {
		t.Fatal(err)
	}
	for range 2 {
		select {
		case err := <-errs:
			if !errors.Is(err, broker.ErrClosed) {
				t.Errorf("waiter after close: err = %v, want ErrClosed", err)
			}
		case <-time.After(10 * time.Second):
			t.Fatal("close did not wake a waiter")
		}
	}
	if err := b.Close(); err != nil {
		t.Errorf("second close: %v", err)
	}
	if _, _, err := b.Enqueue(context.Background(), newJob("m1", job.PriorityNormal)); !errors.Is(err, broker.ErrClosed) {
		t.Errorf("enqueue after close: err = %v, want ErrClosed", err)
	}
}

// TestListPagesThroughEqualTimes pages through jobs created at the same instant: the cursor must
// not skip or repeat any of them.
func TestListPagesThroughEqualTimes(t *testing.T) {
	clk := newClock() // never advanced: every job has the same created_at
	b := openAt(t, filepath.Join(t.TempDir(), "broker.db"), broker.Config{Now: clk.Now})
	var want []string // newest first
	for range 7 {
		want = append([]string{enqueue(t, b, newJob("m1", job.PriorityNormal)).ID}, want...)
	}
	for _, f := range []broker.ListFilter{{}, {Owner: "k1"}, {Status: job.StatusQueued}, {Owner: "k1", Status: job.StatusQueued}} {
		var got []string
		f.Limit = 2
		for pages := 0; ; pages++ {
			if pages > 10 {
				t.Fatalf("filter %+v: paging does not end", f)
			}
			jobs, next, err := b.List(context.Background(), f)
			if err != nil {
				t.Fatal(err)
			}
			for _, j := range jobs {
				got = append(got, j.ID)
			}
			if next == "" {
				break
			}
			f.Cursor = next
		}
		if strings.Join(got, ",") != strings.Join(want, ",") {
			t.Errorf("filter %+v: got %v, want %v", f, got, want)
		}
	}
}
