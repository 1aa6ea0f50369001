package sqlitebroker

import (
	"context"
	"database/sql"
	"errors"
	"fmt"

	"github.com/neovratz/neovratz/internal/broker"
	"github.com/neovratz/neovratz/internal/job"

	"modernc.org/sqlite"
	sqlite3 "modernc.org/sqlite/lib"
)

// Enqueue stores a new job, its queue entry, its idempotency key and its first status event in
// one transaction.
func (b *Broker) Enqueue(ctx context.Context, j job.Job) (job.Job, bool, error) {
	j.Normalize(b.cfg.Now())
	if err := j.Validate(); err != nil {
		return job.Job{}, false, fmt.Errorf("enqueue: %w", err)
	}
	switch {
	case !nanosRepresentable(j.CreatedAt):
		return job.Job{}, false, fmt.Errorf("enqueue: %w", &job.ValidationError{Field: "created_at", Reason: "must be between the years 1678 and 2262"})
	case !nanosRepresentable(j.Deadline):
		return job.Job{}, false, fmt.Errorf("enqueue: %w", &job.ValidationError{Field: "deadline", Reason: "must be between the years 1678 and 2262"})
	}
	// What is stored is what Get returns: times in UTC, no monotonic reading.
	j.CreatedAt = fromNanos(j.CreatedAt.UnixNano())
	if !j.Deadline.IsZero() {
		j.Deadline = fromNanos(j.Deadline.UnixNano())
	}

	var (
		stored   job.Job
		existing bool
	)
	err := b.write(ctx, func(t *wtx) error {
		if j.IdempotencyKey != "" {
			prev, found, err := t.idempotent(j.Owner, j.IdempotencyKey)
			if err != nil || found {
				stored, existing = prev, found
				return err
			}
		}
		return t.insert(j)
	})
	if err != nil {
		return job.Job{}, false, fmt.Errorf("enqueue %s: %w", j.Model, err)
	}
	if existing {
		return stored, true, nil
	}
	return j, false, nil
}

// idempotent returns the job an earlier request with the same owner and key created, if its key
// has not expired and the job is still kept.
func (t *wtx) idempotent(owner, key string) (job.Job, bool, error) {
	var id string
	err := t.w.idemGet.QueryRowContext(t.ctx, owner, key, t.now).Scan(&id)
	if errors.Is(err, sql.ErrNoRows) {
		return job.Job{}, false, nil
	}
	if err != nil {
		return job.Job{}, false, fmt.Errorf("read idempotency key: %w", err)
	}
	r, err := scanJob(t.w.getJob.QueryRowContext(t.ctx, id))
	if errors.Is(err, sql.ErrNoRows) {
		return job.Job{}, false, nil // the job is gone; the key goes to the new one
	}
	if err != nil {
		return job.Job{}, false, fmt.Errorf("read job %s of idempotency key: %w", id, err)
	}
	return r.Job, true, nil
}

// insert stores a validated new job, refusing it when its model's queue is full.
func (t *wtx) insert(j job.Job) error {
	if capacity := t.b.cfg.QueueCap; capacity > 0 {
		var depth int
		if err := t.w.countQueued.QueryRowContext(t.ctx, j.Model, capacity).Scan(&depth); err != nil {
			return fmt.Errorf("count queue: %w", err)
		}
		if depth >= capacity {
			return &broker.QueueFullError{Model: j.Model, Cap: capacity}
		}
	}
	_, err := t.w.insertJob.ExecContext(t.ctx, j.ID, string(j.Kind), j.Model, j.Owner, string(j.Priority),
		j.Priority.Rank(), j.MaxAttempts, j.IdempotencyKey, nullBytes(j.Input), j.CreatedAt.UnixNano(),
		nullNanos(j.Deadline), t.nextSeq(), t.now)
	if isUniqueViolation(err) {
		return fmt.Errorf("a job with id %s already exists", j.ID)
	}
	if err != nil {
		return fmt.Errorf("insert job: %w", err)
	}
	if _, err := t.w.addModel.ExecContext(t.ctx, j.Model); err != nil {
		return fmt.Errorf("record model: %w", err)
	}
	if j.IdempotencyKey != "" {
		expires := after(t.now, t.b.cfg.Retention)
		if _, err := t.w.idemPut.ExecContext(t.ctx, j.Owner, j.IdempotencyKey, j.ID, expires); err != nil {
			return fmt.Errorf("store idempotency key: %w", err)
		}
	}
	t.wakeQueues = append(t.wakeQueues, j.Model)
	return t.statusEvent(j.ID, job.StatusQueued, nil)
}

// isUniqueViolation reports whether err is SQLite's SQLITE_CONSTRAINT_UNIQUE.
func isUniqueViolation(err error) bool {
	var se *sqlite.Error
	return errors.As(err, &se) && se.Code() == sqlite3.SQLITE_CONSTRAINT_UNIQUE
}
