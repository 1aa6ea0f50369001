package worker

import (
	"context"
	"encoding/json"
	"errors"
	"sync"
	"time"

	"github.com/neovratz/neovratz/internal/broker"
	"github.com/neovratz/neovratz/internal/inference"
)

// maxPendingBytes bounds the text an event writer holds while the broker is slow; an engine that
// emits faster than that waits (backpressure) instead of growing the buffer.
const maxPendingBytes = 1 << 20

// eventWriter writes a job's deltas and progress to its event log from one goroutine, so the
// engine never waits on the broker. The first event goes out as soon as it exists (time to first
// token is not traded for batching); what arrives while a write is in flight is merged — text
// deltas of a choice are joined, progress of an image keeps only the latest step — and written
// next, in one round trip when the broker is an EventBatcher. With an interval, writes after the
// first are at least that far apart, so that fast engines cost the broker fewer writes.
type eventWriter struct {
	b        Broker
	l        *broker.Lease
	now      func() time.Time
	fail     func(error) // ends the job: the broker said the job is canceled or no longer ours
	interval time.Duration
	flush    chan struct{} // closed by close: write what is pending without waiting the interval

	mu      sync.Mutex
	pending []pendingEvent
	bytes   int
	closing bool

	wake  chan struct{} // something is pending or the writer should finish
	space chan struct{} // the writer took the pending events
	done  chan struct{} // the writer goroutine ended
	err   error         // why it ended early, if it did (read after done)
}

type pendingEvent struct {
	delta    *inference.TextDelta
	progress *inference.ImageProgress
}

func newEventWriter(ctx context.Context, b Broker, l *broker.Lease, now func() time.Time, interval time.Duration, fail func(error)) *eventWriter {
	w := &eventWriter{b: b, l: l, now: now, fail: fail, interval: interval, flush: make(chan struct{}),
		wake: make(chan struct{}, 1), space: make(chan struct{}, 1), done: make(chan struct{})}
	go w.run(ctx)
	return w
}

// delta queues new text of a choice.
func (w *eventWriter) delta(ctx context.Context, d inference.TextDelta) error {
	return w.add(ctx, pendingEvent{delta: &d}, len(d.Text)+64*len(d.Logprobs))
}

// progress queues an image's progress.
func (w *eventWriter) progress(ctx context.Context, p inference.ImageProgress) error {
	return w.add(ctx, pendingEvent{progress: &p}, 32)
}

func (w *eventWriter) add(ctx context.Context, ev pendingEvent, size int) error {
	for {
		if ctx.Err() != nil {
			return context.Cause(ctx)
		}
		w.mu.Lock()
		if w.err != nil {
			err := w.err
			w.mu.Unlock()
			return err
		}
		if w.bytes == 0 || w.bytes+size <= maxPendingBytes {
			w.merge(ev)
			w.bytes += size
			w.mu.Unlock()
			select {
			case w.wake <- struct{}{}:
			default:
			}
			return nil
		}
		w.mu.Unlock()
		select {
		case <-w.space:
		case <-w.done:
		case <-ctx.Done():
		}
	}
}

// merge appends ev to the pending events, joining it with the last one where that loses nothing
// a client needs. Called with w.mu held.
func (w *eventWriter) merge(ev pendingEvent) {
	if n := len(w.pending); n > 0 {
		last := &w.pending[n-1]
		switch {
		case ev.delta != nil && last.delta != nil && last.delta.Index == ev.delta.Index:
			last.delta.Text += ev.delta.Text
			last.delta.Logprobs = append(last.delta.Logprobs, ev.delta.Logprobs...)
			return
		case ev.progress != nil && last.progress != nil && last.progress.Index == ev.progress.Index:
			*last.progress = *ev.progress
			return
		}
	}
	w.pending = append(w.pending, ev)
}

// close waits until every queued event is written (or ctx ends) and stops the writer. It returns
// why writing stopped early, if it did.
func (w *eventWriter) close(ctx context.Context) error {
	w.mu.Lock()
	if !w.closing {
		w.closing = true
		close(w.flush)
	}
	w.mu.Unlock()
	select {
	case w.wake <- struct{}{}:
	default:
	}
	select {
	case <-w.done:
		return w.err
	case <-ctx.Done():
		return context.Cause(ctx)
	}
}

func (w *eventWriter) run(ctx context.Context) {
	defer close(w.done)
	for {
		select {
		case <-w.wake:
		case <-ctx.Done():
			w.stop(context.Cause(ctx))
			return
		}
		w.mu.Lock()
		batch, closing := w.pending, w.closing
		w.pending, w.bytes = nil, 0
		w.mu.Unlock()
		select {
		case w.space <- struct{}{}:
		default:
		}
		if len(batch) > 0 {
			started := time.Now()
			if err := w.write(ctx, batch); err != nil {
				w.stop(err)
				return
			}
			if w.interval > 0 && !closing {
				// Let the next deltas gather, unless the job ends first.
				t := time.NewTimer(w.interval - time.Since(started))
				select {
				case <-t.C:
				case <-w.flush:
				case <-ctx.Done():
				}
				t.Stop()
			}
		}
		if closing {
			w.mu.Lock()
			left := len(w.pending)
			w.mu.Unlock()
			if left == 0 {
				return
			}
			select { // events added after close was called: go round again
			case w.wake <- struct{}{}:
			default:
			}
		}
	}
}

func (w *eventWriter) stop(err error) {
	w.mu.Lock()
	w.err = err
	w.mu.Unlock()
}

// write appends batch to the log, retrying broker errors other than those that end the job
// until ctx ends: a lost delta would leave a hole in the client's stream.
func (w *eventWriter) write(ctx context.Context, batch []pendingEvent) error {
	evs := make([]broker.Event, 0, len(batch))
	for _, p := range batch {
		ev := broker.Event{Type: broker.EventDelta, Time: w.now()}
		var err error
		if p.progress != nil {
			ev.Type = broker.EventProgress
			ev.Data, err = json.Marshal(p.progress)
		} else {
			ev.Data, err = json.Marshal(p.delta)
		}
		if err != nil {
			return err
		}
		evs = append(evs, ev)
	}
	backoff := 50 * time.Millisecond
	for {
		err := w.append(ctx, &evs)
		if err == nil {
			return nil
		}
		if errors.Is(err, broker.ErrCanceled) || errors.Is(err, broker.ErrLeaseLost) || errors.Is(err, broker.ErrFinished) {
			w.fail(err)
			return err
		}
		if ctx.Err() != nil {
			return context.Cause(ctx)
		}
		select {
		case <-time.After(backoff):
		case <-ctx.Done():
			return context.Cause(ctx)
		}
		backoff = min(2*backoff, time.Second)
	}
}

// append writes *evs, all of them or (on error) a prefix; it drops the written prefix from *evs
// so that a retry does not write an event twice.
func (w *eventWriter) append(ctx context.Context, evs *[]broker.Event) error {
	if eb, ok := w.b.(EventBatcher); ok && len(*evs) > 1 {
		n, err := eb.AppendEvents(ctx, w.l, *evs)
		*evs = (*evs)[min(max(n, 0), len(*evs)):]
		return err
	}
	for len(*evs) > 0 {
		if _, err := w.b.AppendEvent(ctx, w.l, (*evs)[0]); err != nil {
			return err
		}
		*evs = (*evs)[1:]
	}
	return nil
}
