package sqlitebroker

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"

	"github.com/neovratz/neovratz/internal/broker"
	"github.com/neovratz/neovratz/internal/job"
)

// maxResultBytes bounds a job's result (an image result is a few megabytes of base64).
const maxResultBytes = 64 << 20

// held is what the fence learned about a job whose lease it accepted.
type held struct {
	attempts, maxAttempts int
	model                 string
}

// fence checks that l still holds its job: the job is running, on the same delivery (the
// token, which changes at every hand-out, so that neither a lapsed holder nor one that released
// the job can touch it again), for the same worker and attempt, and the lease has not lapsed.
// A lapsed lease is refused even before maintenance has given the job to someone else.
func (t *wtx) fence(l *broker.Lease) (held, error) {
	if l == nil {
		return held{}, errors.New("nil lease")
	}
	var (
		h          held
		status     string
		delivery   int64
		worker     string
		leaseUntil sql.NullInt64
	)
	err := t.w.fence.QueryRowContext(t.ctx, l.Job.ID).Scan(&status, &h.attempts, &h.maxAttempts, &delivery,
		&worker, &leaseUntil, &h.model)
	switch {
	case errors.Is(err, sql.ErrNoRows):
		return held{}, broker.ErrLeaseLost // forgotten after retention
	case err != nil:
		return held{}, fmt.Errorf("read job: %w", err)
	case job.Status(status) == job.StatusCanceled:
		return held{}, broker.ErrCanceled
	case job.Status(status) != job.StatusRunning,
		strconv.FormatInt(delivery, 10) != l.Token,
		h.attempts != l.Attempt,
		worker != l.WorkerID,
		!leaseUntil.Valid || leaseUntil.Int64 < t.now:
		return held{}, broker.ErrLeaseLost
	}
	return h, nil
}

// leaseErr wraps an error of a lease operation with the operation and the job.
func leaseErr(op string, l *broker.Lease, err error) error {
	if l == nil {
		return fmt.Errorf("%s: %w", op, err)
	}
	return fmt.Errorf("%s of job %s: %w", op, l.Job.ID, err)
}

// ExtendLease renews l for another Config.Lease.
func (b *Broker) ExtendLease(ctx context.Context, l *broker.Lease) error {
	var until int64
	err := b.write(ctx, func(t *wtx) error {
		if _, err := t.fence(l); err != nil {
			return err
		}
		until = after(t.now, b.cfg.Lease)
		if _, err := t.w.extend.ExecContext(t.ctx, until, l.Job.ID); err != nil {
			return fmt.Errorf("extend: %w", err)
		}
		return nil
	})
	if err != nil {
		return leaseErr("extend lease", l, err)
	}
	l.Until = fromNanos(until)
	return nil
}

// Release puts the job back at the front of its queue and gives its attempt back.
func (b *Broker) Release(ctx context.Context, l *broker.Lease) error {
	err := b.write(ctx, func(t *wtx) error {
		h, err := t.fence(l)
		if err != nil {
			return err
		}
		if _, err := t.w.release.ExecContext(t.ctx, l.Job.ID); err != nil {
			return fmt.Errorf("release: %w", err)
		}
		t.wakeQueues = append(t.wakeQueues, h.model)
		return t.statusEvent(l.Job.ID, job.StatusQueued, nil)
	})
	if err != nil {
		return leaseErr("release", l, err)
	}
	return nil
}

// Complete finishes the job with its result.
func (b *Broker) Complete(ctx context.Context, l *broker.Lease, result json.RawMessage) error {
	switch {
	case len(result) > maxResultBytes:
		return leaseErr("complete", l, fmt.Errorf("result is larger than %d bytes", maxResultBytes))
	case len(result) > 0 && !json.Valid(result):
		return leaseErr("complete", l, errors.New("result is not valid JSON"))
	}
	err := b.write(ctx, func(t *wtx) error {
		if _, err := t.fence(l); err != nil {
			return err
		}
		if _, err := t.w.complete.ExecContext(t.ctx, nullBytes(result), t.now, l.Job.ID); err != nil {
			return fmt.Errorf("complete: %w", err)
		}
		// The final event carries the result (when small), so a follower need not read the job.
		_, err := t.event(l.Job.ID, broker.EventStatus, broker.FinalStatus(leaseJob(l), result, t.nowTime()))
		return err
	})
	if err != nil {
		return leaseErr("complete", l, err)
	}
	return nil
}

// Fail ends the attempt: back to the queue after a backoff when the failure is retryable and
// attempts remain, otherwise failed and dead-lettered.
func (b *Broker) Fail(ctx context.Context, l *broker.Lease, failure job.Error) error {
	err := b.write(ctx, func(t *wtx) error {
		h, err := t.fence(l)
		if err != nil {
			return err
		}
		if !failure.Retryable || h.attempts >= h.maxAttempts {
			return t.fail(l.Job.ID, &failure)
		}
		available := after(t.now, max(b.cfg.Backoff(h.attempts), 0))
		code, msg, retryable := errorCols(&failure)
		_, err = t.w.retry.ExecContext(t.ctx, available, t.nextSeq(), t.now, code, msg, retryable, l.Job.ID)
		if err != nil {
			return fmt.Errorf("queue for retry: %w", err)
		}
		// Reservers of the model wake to set their timers for the end of the backoff.
		t.wakeQueues = append(t.wakeQueues, h.model)
		return t.statusEvent(l.Job.ID, job.StatusQueued, &failure)
	})
	if err != nil {
		return leaseErr("fail", l, err)
	}
	return nil
}

// fail ends a job as failed and puts it in the dead-letter list.
func (t *wtx) fail(id string, e *job.Error) error {
	code, msg, retryable := errorCols(e)
	if _, err := t.w.failJob.ExecContext(t.ctx, t.now, code, msg, retryable, id); err != nil {
		return fmt.Errorf("fail %s: %w", id, err)
	}
	return t.statusEvent(id, job.StatusFailed, e)
}

// leaseJob is the job a lease holds, with its attempts as the lease's fence checked them.
func leaseJob(l *broker.Lease) job.Job {
	j := l.Job
	j.Attempts = l.Attempt
	return j
}
