package sqlitebroker

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"math"
	"strings"
	"time"

	"github.com/neovratz/neovratz/internal/broker"
	"github.com/neovratz/neovratz/internal/job"
)

// Page sizes of List and DeadLetters.
const (
	defaultListLimit = 50
	maxListLimit     = 1000
)

func listLimit(limit int) int {
	if limit <= 0 {
		return defaultListLimit
	}
	return min(limit, maxListLimit)
}

// Cancel cancels a queued or running job. A running job's holder finds out at its next lease
// operation (ErrCanceled) and its readers from the status event.
func (b *Broker) Cancel(ctx context.Context, id string) (job.Job, error) {
	var j job.Job
	err := b.write(ctx, func(t *wtx) error {
		r, err := scanJob(t.w.cancel.QueryRowContext(t.ctx, t.now, id))
		if errors.Is(err, sql.ErrNoRows) {
			// Not queued or running: finished, or unknown.
			r, err = scanJob(t.w.getJob.QueryRowContext(t.ctx, id))
			if errors.Is(err, sql.ErrNoRows) {
				return broker.ErrNotFound
			}
			if err != nil {
				return fmt.Errorf("read job: %w", err)
			}
			j = r.Job
			return broker.ErrFinished
		}
		if err != nil {
			return fmt.Errorf("cancel: %w", err)
		}
		j = r.Job
		return t.statusEvent(id, job.StatusCanceled, nil)
	})
	switch {
	case errors.Is(err, broker.ErrFinished):
		return j, fmt.Errorf("cancel %s: %w", id, err)
	case err != nil:
		return job.Job{}, fmt.Errorf("cancel %s: %w", id, err)
	}
	return j, nil
}

// Requeue takes a job out of the dead-letter list and queues it again (at the back of its
// priority) with its attempts, result and error cleared.
func (b *Broker) Requeue(ctx context.Context, id string) (job.Job, error) {
	var j job.Job
	err := b.write(ctx, func(t *wtx) error {
		r, err := scanJob(t.w.requeue.QueryRowContext(t.ctx, t.nextSeq(), t.now, id))
		if errors.Is(err, sql.ErrNoRows) {
			return broker.ErrNotFound
		}
		if err != nil {
			return fmt.Errorf("requeue: %w", err)
		}
		j = r.Job
		t.wakeQueues = append(t.wakeQueues, j.Model)
		return t.statusEvent(id, job.StatusQueued, nil)
	})
	if err != nil {
		return job.Job{}, fmt.Errorf("requeue %s: %w", id, err)
	}
	return j, nil
}

// List returns jobs newest first (by creation time, then by order of enqueue).
func (b *Broker) List(ctx context.Context, f broker.ListFilter) ([]job.Job, string, error) {
	if f.Status != "" && !f.Status.Valid() {
		return nil, "", fmt.Errorf("list: unknown status %q", f.Status)
	}
	created, n := int64(math.MaxInt64), int64(math.MaxInt64)
	if f.Cursor != "" {
		var err error
		if created, n, err = decodeCursor(f.Cursor); err != nil {
			return nil, "", fmt.Errorf("list: %w", err)
		}
	}
	limit := listLimit(f.Limit)
	if b.closed() {
		return nil, "", broker.ErrClosed
	}
	var rows *sql.Rows
	var err error
	// One more than the page: whether it exists says whether there is a next page.
	switch {
	case f.Owner != "" && f.Status != "":
		rows, err = b.r.listOwnerStatus.QueryContext(ctx, f.Owner, string(f.Status), created, n, limit+1)
	case f.Owner != "":
		rows, err = b.r.listOwner.QueryContext(ctx, f.Owner, created, n, limit+1)
	case f.Status != "":
		rows, err = b.r.listStatus.QueryContext(ctx, string(f.Status), created, n, limit+1)
	default:
		rows, err = b.r.listAll.QueryContext(ctx, created, n, limit+1)
	}
	if err != nil {
		return nil, "", fmt.Errorf("list: %w", b.readErr(err))
	}
	rs, err := scanJobs(rows)
	if err != nil {
		return nil, "", fmt.Errorf("list: %w", b.readErr(err))
	}
	next := ""
	if len(rs) > limit {
		rs = rs[:limit]
		last := rs[limit-1]
		next = encodeCursor(last.created, last.n)
	}
	jobs := make([]job.Job, len(rs))
	for i, r := range rs {
		jobs[i] = r.Job
	}
	return jobs, next, nil
}

// DeadLetters lists the dead-letter list, the most recently failed first.
func (b *Broker) DeadLetters(ctx context.Context, limit int) ([]job.Job, error) {
	if b.closed() {
		return nil, broker.ErrClosed
	}
	rows, err := b.r.deadLetters.QueryContext(ctx, listLimit(limit))
	if err != nil {
		return nil, fmt.Errorf("dead letters: %w", b.readErr(err))
	}
	rs, err := scanJobs(rows)
	if err != nil {
		return nil, fmt.Errorf("dead letters: %w", b.readErr(err))
	}
	jobs := make([]job.Job, len(rs))
	for i, r := range rs {
		jobs[i] = r.Job
	}
	return jobs, nil
}

// scanJobs reads and closes rows of jobCols.
func scanJobs(rows *sql.Rows) ([]jobRow, error) {
	defer rows.Close()
	var rs []jobRow
	for rows.Next() {
		r, err := scanJob(rows)
		if err != nil {
			return nil, err
		}
		rs = append(rs, r)
	}
	return rs, rows.Err()
}

// QueueStats describes the queue of every model that has had a job, sorted by model, from one
// snapshot of the database.
func (b *Broker) QueueStats(ctx context.Context) ([]broker.QueueStats, error) {
	if b.closed() {
		return nil, broker.ErrClosed
	}
	now := b.cfg.Now().UnixNano()
	rows, err := b.r.queueStats.QueryContext(ctx)
	if err != nil {
		return nil, fmt.Errorf("queue stats: %w", b.readErr(err))
	}
	defer rows.Close()
	var stats []broker.QueueStats
	for rows.Next() {
		var (
			q      broker.QueueStats
			oldest sql.NullInt64
		)
		if err := rows.Scan(&q.Model, &q.Depth, &oldest, &q.Running); err != nil {
			return nil, fmt.Errorf("queue stats: %w", b.readErr(err))
		}
		if oldest.Valid && oldest.Int64 < now {
			q.OldestQueuedAge = time.Duration(now - oldest.Int64)
		}
		stats = append(stats, q)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("queue stats: %w", b.readErr(err))
	}
	return stats, nil
}

// canceledBatch bounds the ids of one Canceled query (SQLite's default limit on parameters is
// far above it).
const canceledBatch = 500

// Canceled returns those of ids whose jobs were canceled, in one query per canceledBatch ids: a
// worker checks all its running jobs with it (see worker.CancelChecker).
func (b *Broker) Canceled(ctx context.Context, ids []string) ([]string, error) {
	if b.closed() {
		return nil, broker.ErrClosed
	}
	var out []string
	for len(ids) > 0 {
		batch := ids[:min(len(ids), canceledBatch)]
		ids = ids[len(batch):]
		args := make([]any, len(batch))
		for i, id := range batch {
			args[i] = id
		}
		q := "SELECT id FROM jobs WHERE status = 'canceled' AND id IN (?" + strings.Repeat(",?", len(batch)-1) + ")"
		rows, err := b.db.QueryContext(ctx, q, args...)
		if err != nil {
			return nil, fmt.Errorf("canceled: %w", b.readErr(err))
		}
		for rows.Next() {
			var id string
			if err := rows.Scan(&id); err != nil {
				rows.Close()
				return nil, fmt.Errorf("canceled: %w", err)
			}
			out = append(out, id)
		}
		rows.Close()
		if err := rows.Err(); err != nil {
			return nil, fmt.Errorf("canceled: %w", b.readErr(err))
		}
	}
	return out, nil
}
