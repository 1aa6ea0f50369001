package sqlitebroker

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/neovratz/neovratz/internal/broker"
	"github.com/neovratz/neovratz/internal/job"
)

// forgetBatch bounds the finished jobs one maintenance pass deletes, so that a pass holds the
// write lock for a few milliseconds at most. A pass that fills its batch is followed at once by
// another (writers waiting for the lock go first), so retention keeps up with any rate of jobs.
const forgetBatch = 200

// maintenanceInterval is how often the maintenance pass runs: a quarter of a lease, so a lapsed
// lease comes back within a quarter lease of lapsing, but at most every 10ms and at least every
// 250ms. A pass that finds nothing to do costs a few index probes. Picking up jobs does not
// depend on it (that is Reserve's wake-ups); it bounds how late lapses, deadlines and
// retention take effect.
func maintenanceInterval(lease time.Duration) time.Duration {
	return min(max(lease/4, 10*time.Millisecond), 250*time.Millisecond)
}

// maintainer is the state of the maintenance goroutine between passes.
type maintainer struct {
	// dueSince is the clock reading of the last pass: backoffs that ended since then wake the
	// reservers of their models. Reserve keeps its own timer for them; this pass makes the
	// wake-up independent of real time, for an injected clock that jumps.
	dueSince int64
}

// maintain runs maintenance passes until ctx ends.
func (b *Broker) maintain(ctx context.Context, m maintainer) {
	defer close(b.maintDone)
	tick := time.NewTicker(maintenanceInterval(b.cfg.Lease))
	defer tick.Stop()
	backlog := false
	for {
		if !backlog {
			select {
			case <-ctx.Done():
				return
			case <-tick.C:
			}
		}
		var err error
		backlog, err = m.run(ctx, b)
		if err != nil && ctx.Err() == nil && !errors.Is(err, broker.ErrClosed) {
			b.log.Error("sqlite broker maintenance", "err", err)
		}
	}
}

// run is one maintenance pass, in one write transaction. backlog says that finished jobs past
// their retention remain to be deleted.
func (m *maintainer) run(ctx context.Context, b *Broker) (backlog bool, err error) {
	var now int64
	err = b.write(ctx, func(t *wtx) error {
		now = t.now
		if err := t.reclaimLapsed(); err != nil {
			return err
		}
		if err := t.expireOverdue(); err != nil {
			return err
		}
		if err := t.wakeDue(m.dueSince); err != nil {
			return err
		}
		forgotten, err := t.forgetFinished()
		if err != nil {
			return err
		}
		backlog = forgotten == forgetBatch
		if _, err := t.w.staleWorkers.ExecContext(t.ctx, after(t.now, -b.cfg.WorkerTTL)); err != nil {
			return fmt.Errorf("forget silent workers: %w", err)
		}
		return nil
	})
	if err != nil {
		return false, err
	}
	m.dueSince = now
	return backlog, nil
}

// reclaimLapsed takes back the jobs whose holder let the lease lapse: back to the front of the
// queue (the attempt was counted when it was handed out), or, when that was the last attempt,
// failed and dead-lettered.
func (t *wtx) reclaimLapsed() error {
	type lapsed struct {
		n                     int64
		id, model, worker     string
		attempts, maxAttempts int
	}
	rows, err := t.w.lapsed.QueryContext(t.ctx, t.now)
	if err != nil {
		return fmt.Errorf("find lapsed leases: %w", err)
	}
	var found []lapsed
	for rows.Next() {
		var l lapsed
		if err := rows.Scan(&l.n, &l.id, &l.model, &l.attempts, &l.maxAttempts, &l.worker); err != nil {
			rows.Close()
			return fmt.Errorf("find lapsed leases: %w", err)
		}
		found = append(found, l)
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return fmt.Errorf("find lapsed leases: %w", err)
	}

	for _, l := range found {
		if l.attempts >= l.maxAttempts {
			e := &job.Error{
				Code:    "lease_lapsed",
				Message: fmt.Sprintf("the worker stopped renewing its lease on attempt %d of %d", l.attempts, l.maxAttempts),
			}
			if err := t.fail(l.id, e); err != nil {
				return err
			}
			t.b.log.Warn("lease lapsed on the last attempt; job failed", "job", l.id, "model", l.model,
				"worker", l.worker, "attempt", l.attempts)
			continue
		}
		if _, err := t.w.requeueLapsed.ExecContext(t.ctx, l.n); err != nil {
			return fmt.Errorf("requeue %s: %w", l.id, err)
		}
		if err := t.statusEvent(l.id, job.StatusQueued, nil); err != nil {
			return err
		}
		t.wakeQueues = append(t.wakeQueues, l.model)
		t.b.log.Info("lease lapsed; job queued again", "job", l.id, "model", l.model,
			"worker", l.worker, "attempt", l.attempts)
	}
	return nil
}

// errDeadline is the error of an expired job.
var errDeadline = job.Error{Code: "deadline_exceeded", Message: "the job did not start before its deadline"}

// expireOverdue expires the queued jobs whose deadline has passed.
func (t *wtx) expireOverdue() error {
	rows, err := t.w.expire.QueryContext(t.ctx, t.now, errDeadline.Code, errDeadline.Message, t.now)
	if err != nil {
		return fmt.Errorf("expire jobs: %w", err)
	}
	var ids []string
	for rows.Next() {
		var id string
		if err := rows.Scan(&id); err != nil {
			rows.Close()
			return fmt.Errorf("expire jobs: %w", err)
		}
		ids = append(ids, id)
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return fmt.Errorf("expire jobs: %w", err)
	}
	for _, id := range ids {
		e := errDeadline
		if err := t.statusEvent(id, job.StatusExpired, &e); err != nil {
			return err
		}
	}
	return nil
}

// wakeDue wakes the reservers of models whose delayed jobs became available since since.
func (t *wtx) wakeDue(since int64) error {
	rows, err := t.w.dueModels.QueryContext(t.ctx, since, t.now)
	if err != nil {
		return fmt.Errorf("find ended backoffs: %w", err)
	}
	defer rows.Close()
	for rows.Next() {
		var model string
		if err := rows.Scan(&model); err != nil {
			return fmt.Errorf("find ended backoffs: %w", err)
		}
		t.wakeQueues = append(t.wakeQueues, model)
	}
	return rows.Err()
}

// forgetFinished deletes up to forgetBatch jobs that finished more than Config.Retention ago,
// with their events and idempotency keys, and idempotency keys past their time. It returns how
// many jobs it deleted.
func (t *wtx) forgetFinished() (int, error) {
	cutoff := after(t.now, -t.b.cfg.Retention)
	rows, err := t.w.forget.QueryContext(t.ctx, cutoff, forgetBatch)
	if err != nil {
		return 0, fmt.Errorf("forget finished jobs: %w", err)
	}
	type gone struct{ id, owner, key string }
	var forgotten []gone
	for rows.Next() {
		var g gone
		if err := rows.Scan(&g.id, &g.owner, &g.key); err != nil {
			rows.Close()
			return 0, fmt.Errorf("forget finished jobs: %w", err)
		}
		forgotten = append(forgotten, g)
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return 0, fmt.Errorf("forget finished jobs: %w", err)
	}
	for _, g := range forgotten {
		if _, err := t.w.forgetEvents.ExecContext(t.ctx, g.id); err != nil {
			return 0, fmt.Errorf("forget events of %s: %w", g.id, err)
		}
		if g.key != "" {
			if _, err := t.w.forgetIdem.ExecContext(t.ctx, g.owner, g.key, g.id); err != nil {
				return 0, fmt.Errorf("forget idempotency key of %s: %w", g.id, err)
			}
		}
	}
	if _, err := t.w.expireIdem.ExecContext(t.ctx, t.now); err != nil {
		return 0, fmt.Errorf("forget idempotency keys: %w", err)
	}
	return len(forgotten), nil
}
