package worker

import (
	"context"
	"errors"
	"sync"
	"time"

	"github.com/neovratz/neovratz/internal/broker"
)

// brokerCallTimeout bounds the registry calls made outside Run's context (at shutdown).
const brokerCallTimeout = 5 * time.Second

// Run serves jobs until ctx ends, then drains: it stops reserving, lets running jobs finish for
// up to Config.DrainTimeout, hands the others back to their queues, deregisters and returns nil.
// It returns an error only when the worker cannot start: the broker refused its registration
// with an error that says retrying is pointless (see Fatal). A broker that is down at start is
// retried until ctx ends.
func (w *Worker) Run(ctx context.Context) error {
	w.startedAt = w.now()
	if err := w.register(ctx); err != nil {
		if ctx.Err() != nil {
			return nil
		}
		return err
	}
	w.logger.Info("worker registered", "models", w.info().Models, "slots", w.info().Slots)

	// Jobs run on a context of their own: Run's ending starts a drain, not an abort.
	jobCtx, stopJobs := context.WithCancelCause(context.WithoutCancel(ctx))
	defer stopJobs(errJobDone)
	hbCtx, stopHeartbeat := context.WithCancel(context.WithoutCancel(ctx))
	var hb sync.WaitGroup
	hb.Go(func() { w.heartbeat(hbCtx) })
	if w.cancels != nil {
		// Stopped with the heartbeat, once every job has ended.
		hb.Go(func() { w.cancels.run(hbCtx) })
	}

	// Reserving stops when Run's context ends or an operator asks the worker to drain.
	reserveCtx, stopReserving := context.WithCancel(ctx)
	defer stopReserving()
	w.mu.Lock()
	w.stopReserving = stopReserving
	w.mu.Unlock()
	var jobs, reservers sync.WaitGroup
	for _, m := range w.models {
		reservers.Go(func() { w.reserve(reserveCtx, jobCtx, m, &jobs) })
	}
	<-ctx.Done()

	w.logger.Info("draining: no new jobs; running jobs may finish", "timeout", w.cfg.DrainTimeout)
	w.mu.Lock()
	w.draining = true
	w.mu.Unlock()
	rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), brokerCallTimeout)
	if err := w.broker.RegisterWorker(rctx, w.info()); err != nil { // tells the registry we drain
		w.logger.Warn("mark worker draining", "err", err)
	}
	cancel()
	reservers.Wait()

	finished := make(chan struct{})
	go func() { jobs.Wait(); close(finished) }()
	timer := time.NewTimer(w.cfg.DrainTimeout)
	select {
	case <-finished:
		timer.Stop()
	case <-timer.C:
		w.logger.Warn("drain timeout: handing running jobs back to the queue")
		stopJobs(errDrain)
		<-finished
	}
	stopHeartbeat()
	hb.Wait()

	dctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), brokerCallTimeout)
	defer cancel()
	if err := w.broker.DeregisterWorker(dctx, w.cfg.ID); err != nil {
		w.logger.Warn("deregister", "err", err)
	}
	w.logger.Info("worker stopped")
	return nil
}

// Fatal reports whether a broker error says that retrying is pointless: it has a method
// Fatal() bool that returns true (the HTTP client's error for a rejected token does).
func Fatal(err error) bool {
	var f interface{ Fatal() bool }
	return errors.As(err, &f) && f.Fatal()
}

// register adds the worker to the registry, retrying with backoff until it succeeds, ctx ends or
// the error is fatal.
func (w *Worker) register(ctx context.Context) error {
	backoff := 200 * time.Millisecond
	for {
		err := w.broker.RegisterWorker(ctx, w.info())
		if err == nil {
			w.heartbeatOK()
			return nil
		}
		if Fatal(err) || ctx.Err() != nil {
			return err
		}
		w.logger.Warn("register worker; retrying", "err", err, "in", backoff)
		if !sleep(ctx, backoff) {
			return ctx.Err()
		}
		backoff = min(2*backoff, 10*time.Second)
	}
}

// heartbeat keeps the registry entry alive until ctx ends, registering again when the registry
// has forgotten the worker (after a broker restart or a long partition).
func (w *Worker) heartbeat(ctx context.Context) {
	t := time.NewTicker(w.cfg.HeartbeatInterval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		err := w.broker.HeartbeatWorker(ctx, w.cfg.ID)
		if errors.Is(err, broker.ErrNotFound) {
			w.logger.Warn("the registry forgot this worker; registering again")
			err = w.broker.RegisterWorker(ctx, w.info())
		}
		switch {
		case err == nil:
			w.heartbeatOK()
			w.checkDrainRequest(ctx)
		case ctx.Err() == nil:
			w.logger.Warn("heartbeat", "err", err)
		}
	}
}

// checkDrainRequest reads the worker's registry entry and, when an operator marked it draining,
// stops taking jobs. Running jobs finish; the worker stays registered (as draining) until it is
// stopped, so that a restart policy does not bring it straight back.
func (w *Worker) checkDrainRequest(ctx context.Context) {
	wl, ok := w.broker.(WorkerLister)
	if !ok {
		return
	}
	ws, err := wl.Workers(ctx)
	if err != nil {
		if ctx.Err() == nil {
			w.logger.Warn("read registry entry", "err", err)
		}
		return
	}
	for _, info := range ws {
		if info.ID != w.cfg.ID || !info.Draining {
			continue
		}
		w.mu.Lock()
		already, stop := w.draining, w.stopReserving
		w.draining = true
		w.mu.Unlock()
		if !already {
			w.logger.Info("drain requested through the registry: taking no new jobs")
			if stop != nil {
				stop()
			}
		}
	}
}

func (w *Worker) heartbeatOK() {
	w.mu.Lock()
	w.lastHeartbeat = w.now()
	w.mu.Unlock()
}

// reserve takes jobs for one model while ctx lasts, never more than the model has free slots,
// and starts each on jobCtx. A slot is taken before Reserve is called and given back when a job
// ends (or when Reserve hands out fewer jobs than asked), so the jobs this worker holds never
// exceed its slots: a busy worker leaves queued jobs to others.
func (w *Worker) reserve(ctx, jobCtx context.Context, m *model, jobs *sync.WaitGroup) {
	backoff := 100 * time.Millisecond
	for {
		select {
		case m.slots <- struct{}{}:
		case <-ctx.Done():
			return
		}
		n := 1
	more:
		for n < cap(m.slots) {
			select {
			case m.slots <- struct{}{}:
				n++
			default:
				break more
			}
		}
		leases, err := w.broker.Reserve(ctx, w.cfg.ID, []string{m.Name}, n)
		for range n - len(leases) {
			<-m.slots
		}
		if err != nil {
			if ctx.Err() != nil {
				return
			}
			w.logger.Warn("reserve", "model", m.Name, "err", err, "retry_in", backoff)
			if !sleep(ctx, backoff) {
				return
			}
			backoff = min(2*backoff, 5*time.Second)
			continue
		}
		backoff = 100 * time.Millisecond
		for _, l := range leases {
			jobs.Go(func() {
				defer func() { <-m.slots }()
				w.runJob(jobCtx, m, l)
			})
		}
	}
}
