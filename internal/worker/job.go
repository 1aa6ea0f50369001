package worker

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"runtime/debug"
	"sync"
	"time"

	"github.com/neovratz/neovratz/internal/broker"
	"github.com/neovratz/neovratz/internal/job"
)

// Causes that end a job's context early. broker.ErrCanceled and broker.ErrLeaseLost are causes
// too, set when the broker reports them.
var (
	errDrain   = errors.New("worker draining: job handed back")
	errJobDone = errors.New("job finished")
)

// finishTimeout bounds the broker calls that end a job (complete, fail, release), which run on a
// context of their own so that they still happen during a drain.
const finishTimeout = 10 * time.Second

// runJob runs one reserved job to its end. ctx is the worker's job context: it ends, with cause
// errDrain, when a drain runs out of time.
func (w *Worker) runJob(ctx context.Context, m *model, l *broker.Lease) {
	log := w.logger.With("job", l.Job.ID, "model", m.Name, "kind", string(l.Job.Kind), "attempt", l.Attempt)
	running := w.metrics.running.WithLabelValues(m.Name)
	running.Inc()
	defer running.Dec()

	jctx, cancel := context.WithCancelCause(ctx)
	defer cancel(errJobDone)
	var bg sync.WaitGroup
	bg.Go(func() { w.keepLease(jctx, cancel, l, log) })
	if w.cancels != nil {
		defer w.cancels.add(l.Job.ID, cancel)()
	} else {
		bg.Go(func() { w.watchCancel(jctx, cancel, l, log) })
	}
	events := newEventWriter(jctx, w.broker, l, w.now, m.StreamInterval, func(err error) { cancel(err) })

	log.Debug("job started")
	start := w.now()
	result, err := w.execute(jctx, m, l, events)
	if err == nil {
		err = events.close(jctx)
	}
	w.metrics.engineSeconds.WithLabelValues(m.Name, string(l.Job.Kind)).Observe(w.now().Sub(start).Seconds())
	cause := context.Cause(jctx) // nil unless the job was stopped from outside
	cancel(errJobDone)
	bg.Wait()

	fctx, fcancel := context.WithTimeout(context.WithoutCancel(ctx), finishTimeout)
	defer fcancel()
	switch {
	case err == nil:
		w.finish(log, m, w.broker.Complete(fctx, l, result), outcomeSucceeded)
	case errors.Is(cause, broker.ErrCanceled):
		log.Info("job canceled while running: engine aborted")
		w.metrics.jobs.WithLabelValues(m.Name, outcomeCanceled).Inc()
	case errors.Is(cause, broker.ErrLeaseLost), errors.Is(cause, broker.ErrFinished):
		log.Warn("lease lost: the job was handed to another worker; result dropped", "err", cause)
		w.metrics.jobs.WithLabelValues(m.Name, outcomeLeaseLost).Inc()
	case errors.Is(cause, errDrain):
		log.Info("drain timeout: job handed back to the queue")
		w.finish(log, m, w.broker.Release(fctx, l), outcomeReleased)
	default:
		failure, reason := classify(err)
		w.metrics.failures.WithLabelValues(m.Name, reason).Inc()
		outcome := outcomeFailed
		if failure.Retryable {
			outcome = outcomeRetried
		}
		lvl := slog.LevelWarn
		if reason == reasonError {
			lvl = slog.LevelError
		}
		log.Log(fctx, lvl, "job failed", "err", err, "retryable", failure.Retryable, "code", failure.Code)
		w.finish(log, m, w.broker.Fail(fctx, l, failure), outcome)
	}
}

// finish records the outcome of a job's last broker call.
func (w *Worker) finish(log *slog.Logger, m *model, err error, outcome string) {
	switch {
	case err == nil:
		log.Debug("job ended", "outcome", outcome)
	case errors.Is(err, broker.ErrCanceled):
		outcome = outcomeCanceled
		log.Info("job was canceled before it could end", "wanted", outcome)
	case errors.Is(err, broker.ErrLeaseLost), errors.Is(err, broker.ErrFinished):
		outcome = outcomeLeaseLost
		log.Warn("lease lost before the job could end; another worker has it", "err", err)
	default:
		// The lease will lapse and the job will run again elsewhere.
		log.Error("could not end the job; its lease will lapse", "err", err, "wanted", outcome)
		return
	}
	w.metrics.jobs.WithLabelValues(m.Name, outcome).Inc()
}

// execute decodes the job's input and runs it on the model's engine, returning the result JSON.
// An engine panic is turned into an error: one bad job must not take the worker down.
func (w *Worker) execute(ctx context.Context, m *model, l *broker.Lease, events *eventWriter) (result json.RawMessage, err error) {
	defer func() {
		if p := recover(); p != nil {
			w.logger.Error("engine panic", "job", l.Job.ID, "model", m.Name, "panic", p, "stack", string(debug.Stack()))
			result, err = nil, fmt.Errorf("engine panic: %v", p)
		}
	}()
	return w.run(ctx, m, l.Job, events)
}

// classify turns an engine error into the job's failure and a metrics reason.
func classify(err error) (job.Error, string) {
	switch {
	case isBadRequest(err):
		return job.Error{Code: "bad_request", Message: err.Error()}, reasonBadRequest
	case IsRetryable(err):
		return job.Error{Code: "engine_unavailable", Message: "the engine is unavailable; the job will be retried while attempts remain", Retryable: true}, reasonRetryable
	case errors.Is(err, context.DeadlineExceeded):
		return job.Error{Code: "engine_timeout", Message: "the engine timed out; the job will be retried while attempts remain", Retryable: true}, reasonRetryable
	}
	return job.Error{Code: "engine_error", Message: "the engine failed to run the job"}, reasonError
}

// keepLease extends the job's lease until ctx ends, at a third of the lease's length so that two
// extensions may fail before it lapses. It ends the job when the broker says it was canceled or
// is no longer ours.
func (w *Worker) keepLease(ctx context.Context, cancel context.CancelCauseFunc, l *broker.Lease, log *slog.Logger) {
	every := w.cfg.ExtendInterval
	if every <= 0 {
		// Until is the broker's clock (the API's, for a worker over HTTP): a worker clock that
		// runs behind would stretch the interval past the lease, hence the cap at a third of
		// the default lease.
		every = min(l.Until.Sub(w.now())/3, 10*time.Second)
		if every <= 0 {
			every = 10 * time.Second
		}
		every = max(every, 10*time.Millisecond)
	}
	// Extend a copy: the broker updates its Until, and the event writer reads l concurrently.
	lc := *l
	lc.Job.Input = nil
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		err := w.broker.ExtendLease(ctx, &lc)
		switch {
		case err == nil:
		case errors.Is(err, broker.ErrCanceled), errors.Is(err, broker.ErrLeaseLost), errors.Is(err, broker.ErrFinished):
			cancel(err)
			return
		case ctx.Err() == nil:
			log.Warn("extend lease", "err", err)
		}
	}
}

// cancelWatchDelay is how long a job runs before it is first checked for cancellation (by the
// worker's cancelWatcher, or its own watch's first read of its event log). Most calls through a gateway end sooner, and a watch per job is a blocking read per job
// for the broker: the delay saves those calls a round trip and a goroutine's wake-ups, at the
// price of an engine that runs up to this long past a cancellation in its first moments.
const cancelWatchDelay = 100 * time.Millisecond

// watchCancel, for a broker that is not a CancelChecker, follows the job's event log and ends
// the job at once when a canceled status appears, so an engine is aborted even while it writes nothing (time to first token, a
// diffusion step, an embedding). While the job streams, the log grows with its own deltas; a
// cancellation then also shows up as an error from the next write, so the watch reads at most
// a few times a second.
func (w *Worker) watchCancel(ctx context.Context, cancel context.CancelCauseFunc, l *broker.Lease, log *slog.Logger) {
	const (
		limit    = 256
		throttle = 200 * time.Millisecond
	)
	// The first read waits cancelWatchDelay: a job that ends sooner costs the broker no read of
	// its log, and its log then holds only what this worker wrote.
	if !sleep(ctx, cancelWatchDelay) {
		return
	}
	after := ""
	backoff := 100 * time.Millisecond
	for ctx.Err() == nil {
		evs, err := w.broker.Events(ctx, l.Job.ID, after, limit, w.cfg.CancelPollWait)
		if err != nil {
			if ctx.Err() != nil {
				return
			}
			log.Warn("watch job events", "err", err)
			if !sleep(ctx, backoff) {
				return
			}
			backoff = min(2*backoff, 5*time.Second)
			continue
		}
		backoff = 100 * time.Millisecond
		for _, ev := range evs {
			after = ev.ID
			if ev.Type != broker.EventStatus {
				continue
			}
			var st broker.StatusEvent
			if json.Unmarshal(ev.Data, &st) == nil && st.Status == job.StatusCanceled {
				cancel(broker.ErrCanceled)
				return
			}
		}
		if len(evs) > 0 && len(evs) < limit && !sleep(ctx, throttle) {
			return
		}
	}
}

// sleep waits d or until ctx ends; it reports whether d passed.
func sleep(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-ctx.Done():
		return false
	}
}
