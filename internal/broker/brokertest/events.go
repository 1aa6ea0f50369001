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

func (s suite) testEvents(t *testing.T) {
	b := s.broker(t, broker.Config{})
	j := enqueue(t, b, newJob("m1"))
	l := reserve(t, b, "w1", 1, "m1")[0]
	var deltaIDs []string
	for _, text := range []string{`"Hel"`, `"lo"`, `"!"`} {
		id, err := b.AppendEvent(ctxFor(t), l, broker.Event{Type: broker.EventDelta, Data: json.RawMessage(text)})
		if err != nil {
			t.Fatalf("append: %v", err)
		}
		if id == "" {
			t.Fatal("append returned an empty event id")
		}
		deltaIDs = append(deltaIDs, id)
	}
	if err := b.Complete(ctxFor(t), l, json.RawMessage(`{"text":"Hello!"}`)); err != nil {
		t.Fatal(err)
	}

	evs := allEvents(t, b, j.ID)
	if got, want := statusesOf(evs), []job.Status{job.StatusQueued, job.StatusRunning, job.StatusSucceeded}; !slices.Equal(got, want) {
		t.Fatalf("status events = %v, want %v", got, want)
	}
	// The final event carries the result and the timings: a follower has the finished job
	// without reading it, and it is the job that Get returns.
	var final broker.StatusEvent
	if err := json.Unmarshal(evs[len(evs)-1].Data, &final); err != nil {
		t.Fatalf("final status event: %v", err)
	}
	fin, ok := final.Finished(j)
	if !ok {
		t.Fatalf("final status event %s carries no result", evs[len(evs)-1].Data)
	}
	got, err := b.Get(ctxFor(t), j.ID)
	if err != nil {
		t.Fatal(err)
	}
	if fin.Status != got.Status || string(fin.Result) != string(got.Result) || !fin.StartedAt.Equal(got.StartedAt) ||
		!fin.FinishedAt.Equal(got.FinishedAt) || fin.Attempts != got.Attempts {
		t.Errorf("job from the final event = %s %s started %v finished %v attempts %d; Get: %s %s %v %v %d",
			fin.Status, fin.Result, fin.StartedAt, fin.FinishedAt, fin.Attempts,
			got.Status, got.Result, got.StartedAt, got.FinishedAt, got.Attempts)
	}
	var deltas []string
	seen := map[string]bool{}
	for _, ev := range evs {
		if seen[ev.ID] {
			t.Fatalf("event id %s appears twice", ev.ID)
		}
		seen[ev.ID] = true
		if ev.Time.IsZero() {
			t.Errorf("event %s has no time", ev.ID)
		}
		if ev.Type == broker.EventDelta {
			deltas = append(deltas, string(ev.Data))
		}
	}
	if want := []string{`"Hel"`, `"lo"`, `"!"`}; !slices.Equal(deltas, want) {
		t.Fatalf("deltas = %v, want %v", deltas, want)
	}

	// Resume after the first delta: exactly what followed it.
	rest, err := b.Events(ctxFor(t), j.ID, deltaIDs[0], 1000, 0)
	if err != nil {
		t.Fatal(err)
	}
	if len(rest) != 3 || rest[0].ID != deltaIDs[1] || rest[1].ID != deltaIDs[2] || rest[2].Type != broker.EventStatus {
		t.Fatalf("events after %s = %v, want the two later deltas and the final status", deltaIDs[0], rest)
	}
	// Paging with a limit walks the same log.
	var paged []broker.Event
	after := ""
	for {
		page, err := b.Events(ctxFor(t), j.ID, after, 2, 0)
		if err != nil {
			t.Fatal(err)
		}
		if len(page) > 2 {
			t.Fatalf("limit 2 returned %d events", len(page))
		}
		if len(page) == 0 {
			break
		}
		paged = append(paged, page...)
		after = page[len(page)-1].ID
	}
	if len(paged) != len(evs) {
		t.Fatalf("paging found %d events, want %d", len(paged), len(evs))
	}

	_, err = b.Events(ctxFor(t), "job_unknown", "", 10, 0)
	wantErr(t, "events of unknown job", err, broker.ErrNotFound)
}

func (s suite) testEventsWait(t *testing.T) {
	b := s.broker(t, broker.Config{})
	j := enqueue(t, b, newJob("m1"))
	l := reserve(t, b, "w1", 1, "m1")[0]
	evs := allEvents(t, b, j.ID)
	last := evs[len(evs)-1].ID

	// Nothing new: a short wait returns empty, not an error.
	none, err := b.Events(ctxFor(t), j.ID, last, 10, 100*time.Millisecond)
	if err != nil || len(none) != 0 {
		t.Fatalf("events with nothing new = %v, %v; want none", none, err)
	}

	got := make(chan []broker.Event, 1)
	go func() {
		ctx, cancel := context.WithTimeout(context.Background(), patience)
		defer cancel()
		evs, err := b.Events(ctx, j.ID, last, 10, patience)
		if err != nil {
			t.Errorf("waiting events: %v", err)
		}
		got <- evs
	}()
	time.Sleep(150 * time.Millisecond)
	if _, err := b.AppendEvent(ctxFor(t), l, broker.Event{Type: broker.EventProgress, Data: json.RawMessage(`{"step":1}`)}); err != nil {
		t.Fatal(err)
	}
	evs = <-got
	if len(evs) != 1 || evs[0].Type != broker.EventProgress || string(evs[0].Data) != `{"step":1}` {
		t.Fatalf("waiting reader got %v, want the progress event", evs)
	}

	// A waiting reader also learns of cancellation: the log ends with a status event.
	after := evs[0].ID
	canceled := make(chan error, 1)
	go func() {
		time.Sleep(150 * time.Millisecond)
		_, err := b.Cancel(context.Background(), j.ID)
		canceled <- err
	}()
	defer func() {
		if err := <-canceled; err != nil {
			t.Errorf("cancel: %v", err)
		}
	}()
	ctx, cancel := context.WithTimeout(context.Background(), patience)
	defer cancel()
	evs, err = b.Events(ctx, j.ID, after, 10, patience)
	if err != nil {
		t.Fatal(err)
	}
	if st := statusesOf(evs); len(st) != 1 || st[0] != job.StatusCanceled {
		t.Fatalf("waiting reader got %v, want the canceled status event", evs)
	}
}
