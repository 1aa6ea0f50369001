package sqlitebroker

import (
	"context"
	"encoding/json"
	"errors"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"github.com/neovratz/neovratz/internal/broker"
	"github.com/neovratz/neovratz/internal/job"
)

// TestGroupCommit: writes that wait for the write connection together run in one transaction,
// each in a savepoint: a write that fails is undone alone, the others commit, and each caller
// gets its own result. A caller that gives up while it waits is not run.
func TestGroupCommit(t *testing.T) {
	b, err := Open(context.Background(), filepath.Join(t.TempDir(), "broker.db"), broker.Config{}, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { b.Close() })
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	j, _, err := b.Enqueue(ctx, job.Job{Kind: job.KindChat, Model: "m", Input: json.RawMessage(`{}`)})
	if err != nil {
		t.Fatal(err)
	}

	errBoom := errors.New("boom")
	appendDelta := func(text string, fail error) func(t *wtx) error {
		return func(t *wtx) error {
			if _, err := t.event(j.ID, broker.EventDelta, []byte(`"`+text+`"`)); err != nil {
				return err
			}
			return fail
		}
	}
	b.wlock <- struct{}{} // hold the connection so that the writes below queue up
	gaveUp, giveUp := context.WithCancel(ctx)
	type result struct {
		name string
		err  error
	}
	results := make(chan result, 4)
	for _, w := range []struct {
		name string
		ctx  context.Context
		fail error
	}{{"kept-1", ctx, nil}, {"undone", ctx, errBoom}, {"kept-2", ctx, nil}, {"gave-up", gaveUp, nil}} {
		go func() { results <- result{w.name, b.write(w.ctx, appendDelta(w.name, w.fail))} }()
	}
	for deadline := time.Now().Add(10 * time.Second); ; {
		b.pmu.Lock()
		n := len(b.pending)
		b.pmu.Unlock()
		if n == 4 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d writes pending, want 4", n)
		}
		time.Sleep(time.Millisecond)
	}
	giveUp()
	// The caller that gave up withdraws its write before anyone runs it.
	if r := <-results; r.name != "gave-up" || !errors.Is(r.err, context.Canceled) {
		t.Fatalf("first result = %s %v, want gave-up with context.Canceled", r.name, r.err)
	}
	<-b.wlock
	got := map[string]error{}
	for range 3 {
		r := <-results
		got[r.name] = r.err
	}
	if got["kept-1"] != nil || got["kept-2"] != nil || !errors.Is(got["undone"], errBoom) {
		t.Fatalf("results = %v, want kept-1 and kept-2 nil, undone boom", got)
	}
	evs, err := b.Events(ctx, j.ID, "", 100, 0)
	if err != nil {
		t.Fatal(err)
	}
	var deltas []string
	for _, ev := range evs {
		if ev.Type == broker.EventDelta {
			deltas = append(deltas, string(ev.Data))
		}
	}
	slices.Sort(deltas)
	if want := []string{`"kept-1"`, `"kept-2"`}; !slices.Equal(deltas, want) {
		t.Errorf("deltas = %v, want %v", deltas, want)
	}
}
