package sqlitebroker

import (
	"cmp"
	"context"
	"database/sql"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"time"

	"github.com/neovratz/neovratz/internal/broker"
	"github.com/neovratz/neovratz/internal/job"
)

// maxReserve bounds the jobs one Reserve hands out.
const maxReserve = 1000

// Reserve hands out up to n queued jobs of models, waiting for one when there is none.
//
// It waits on the queues' notifier, woken by every commit that makes a job of one of models
// available (enqueue, release, retry, lapse, requeue), and, when a retry is in backoff, on a
// timer for the end of the earliest backoff. It never polls.
//
// A wake-up is a broadcast to every waiter of the model, not a hand-off to one: a hand-off is
// lost when its waiter gives up or takes another model's job instead. With many single-slot
// reservers most wake-ups then find nothing, but an empty look is a read-only transaction of
// two index probes (BenchmarkPipeline/16-single-slot-workers stays within the noise of the
// batched runs).
func (b *Broker) Reserve(ctx context.Context, workerID string, models []string, n int) ([]*broker.Lease, error) {
	switch {
	case workerID == "":
		return nil, errors.New("reserve: no worker id")
	case len(models) == 0:
		return nil, errors.New("reserve: no models")
	case n < 1:
		return nil, fmt.Errorf("reserve: n = %d, want at least 1", n)
	}
	n = min(n, maxReserve)
	models = uniq(models)

	// Subscribed before the first look: a job enqueued between the look and the wait still
	// wakes us.
	w := b.queues.subscribe(models...)
	defer b.queues.unsubscribe(w)
	for {
		leases, next, err := b.tryReserve(ctx, workerID, models, n)
		if err != nil {
			if ctx.Err() != nil && errors.Is(err, ctx.Err()) {
				return nil, ctx.Err()
			}
			return nil, fmt.Errorf("reserve: %w", err)
		}
		if len(leases) > 0 {
			return leases, nil
		}
		if err := b.waitQueue(ctx, w, next); err != nil {
			return nil, err
		}
	}
}

// waitQueue waits for a wake-up of w, for the clock to reach next (when not 0), for ctx to end or
// for the broker to close.
func (b *Broker) waitQueue(ctx context.Context, w *waiter, next int64) error {
	var backoffEnds <-chan time.Time
	if next != 0 {
		timer := time.NewTimer(time.Duration(next - b.cfg.Now().UnixNano()))
		defer timer.Stop()
		backoffEnds = timer.C
	}
	select {
	case <-w.c:
	case <-backoffEnds:
	case <-ctx.Done():
		return ctx.Err()
	case <-b.done:
		return broker.ErrClosed
	}
	return nil
}

// tryReserve hands out what is available now, in one write transaction. With nothing to hand
// out it returns when the earliest backoff of models ends (0 when none is in backoff).
func (b *Broker) tryReserve(ctx context.Context, workerID string, models []string, n int) ([]*broker.Lease, int64, error) {
	var (
		leases []*broker.Lease
		next   int64
	)
	// Lapsed leases and deadlines are maintenance's (maintain.go), not Reserve's: probing for
	// them here would cost every reservation two more queries for a gain of at most one
	// maintenance interval. pick skips overdue jobs, so none is handed out in between.
	err := b.write(ctx, func(t *wtx) error {
		picked, err := t.pick(models, n)
		if err != nil {
			return err
		}
		if len(picked) == 0 {
			next, err = t.nextAvailable(models)
			return err
		}
		until := after(t.now, b.cfg.Lease)
		for _, rowid := range picked {
			l, err := t.start(rowid, workerID, until)
			if err != nil {
				return err
			}
			leases = append(leases, l)
		}
		return nil
	})
	if err != nil {
		return nil, 0, err
	}
	return leases, next, nil
}

// pick chooses up to n available jobs of models, highest priority first, FIFO within a
// priority. Each model's queue is read in order from jobs_ready and the heads are merged here,
// which keeps every query on the index however many models a worker serves.
func (t *wtx) pick(models []string, n int) ([]int64, error) {
	type candidate struct{ rowid, prio, seq int64 }
	var cands []candidate
	for _, m := range models {
		rows, err := t.w.candidates.QueryContext(t.ctx, m, t.now, n)
		if err != nil {
			return nil, fmt.Errorf("read queue %s: %w", m, err)
		}
		for rows.Next() {
			var c candidate
			if err := rows.Scan(&c.rowid, &c.prio, &c.seq); err != nil {
				rows.Close()
				return nil, fmt.Errorf("read queue %s: %w", m, err)
			}
			cands = append(cands, c)
		}
		rows.Close()
		if err := rows.Err(); err != nil {
			return nil, fmt.Errorf("read queue %s: %w", m, err)
		}
	}
	slices.SortFunc(cands, func(a, b candidate) int {
		return cmp.Or(cmp.Compare(a.prio, b.prio), cmp.Compare(a.seq, b.seq))
	})
	picked := make([]int64, 0, min(n, len(cands)))
	for _, c := range cands[:min(n, len(cands))] {
		picked = append(picked, c.rowid)
	}
	return picked, nil
}

// start marks a queued job running under a new lease.
func (t *wtx) start(rowid int64, workerID string, until int64) (*broker.Lease, error) {
	var delivery int64
	r, err := scanJob(t.w.start.QueryRowContext(t.ctx, workerID, t.now, until, rowid), &delivery)
	if err != nil {
		// sql.ErrNoRows cannot happen: pick read the row as queued in this transaction.
		return nil, fmt.Errorf("start job: %w", err)
	}
	if err := t.statusEvent(r.ID, job.StatusRunning, nil); err != nil {
		return nil, err
	}
	return &broker.Lease{
		Job:      r.Job,
		WorkerID: workerID,
		Attempt:  r.Attempts,
		Until:    fromNanos(until),
		Token:    strconv.FormatInt(delivery, 10),
	}, nil
}

// nextAvailable is the earliest end of a backoff among the queued jobs of models, or 0.
func (t *wtx) nextAvailable(models []string) (int64, error) {
	var next int64
	for _, m := range models {
		var at sql.NullInt64
		if err := t.w.nextAvailable.QueryRowContext(t.ctx, t.now, m).Scan(&at); err != nil {
			return 0, fmt.Errorf("read backoffs of %s: %w", m, err)
		}
		if at.Valid && (next == 0 || at.Int64 < next) {
			next = at.Int64
		}
	}
	return next, nil
}

// uniq returns models without repeats, in their first order.
func uniq(models []string) []string {
	out := make([]string, 0, len(models))
	for _, m := range models {
		if !slices.Contains(out, m) {
			out = append(out, m)
		}
	}
	return out
}
