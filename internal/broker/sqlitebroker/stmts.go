package sqlitebroker

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strings"
)

// writeStmts are prepared once on the write connection and run only inside a write transaction
// (under Broker.wlock). Preparing once matters: compiling SQL costs more than running these
// small statements.
type writeStmts struct {
	begin, commit, rollback   *sql.Stmt
	spSave, spRelease, spUndo *sql.Stmt // one write of a group commit (see write)

	getJob, jobExists                                  *sql.Stmt
	idemGet, idemPut, countQueued, insertJob, addModel *sql.Stmt
	addEvent                                           *sql.Stmt
	candidates, start, nextAvailable                   *sql.Stmt
	lapsed, requeueLapsed, expire, dueModels           *sql.Stmt
	fence, extend, release, complete, retry, failJob   *sql.Stmt
	cancel, requeue                                    *sql.Stmt
	forget, forgetEvents, forgetIdem, expireIdem       *sql.Stmt
	putWorker, beatWorker, dropWorker, staleWorkers    *sql.Stmt
}

func (s *writeStmts) defs() []stmtDef {
	return []stmtDef{
		// IMMEDIATE takes the write lock at BEGIN: a transaction that started as a reader could
		// fail with SQLITE_BUSY when it tries to write.
		{&s.begin, `BEGIN IMMEDIATE`},
		{&s.commit, `COMMIT`},
		{&s.rollback, `ROLLBACK`},
		{&s.spSave, `SAVEPOINT w`},
		{&s.spRelease, `RELEASE w`},
		{&s.spUndo, `ROLLBACK TO w`},

		{&s.getJob, `SELECT #JOB FROM jobs WHERE id = ?`},

		// Enqueue.
		{&s.idemGet, `SELECT job_id FROM idempotency WHERE owner = ? AND key = ? AND expires_at > ?`},
		{&s.idemPut, `INSERT OR REPLACE INTO idempotency (owner, key, job_id, expires_at) VALUES (?, ?, ?, ?)`},
		// Counting stops at the cap, so a full queue costs the cap, not its depth.
		{&s.countQueued, `SELECT count(*) FROM (SELECT 1 FROM jobs WHERE status = 'queued' AND model = ? LIMIT ?)`},
		{&s.insertJob, `INSERT INTO jobs (id, kind, model, owner, priority, prio, status, attempts, max_attempts,
			idem_key, input, created_at, deadline, seq, queued_at)
			VALUES (?, ?, ?, ?, ?, ?, 'queued', 0, ?, ?, ?, ?, ?, ?, ?)`},
		{&s.addModel, `INSERT OR IGNORE INTO models (model) VALUES (?)`},
		// The next id of the job's log: one past its last, read from the page the row goes to.
		{&s.addEvent, `INSERT INTO events (job_id, id, type, data, time)
			SELECT ?1, coalesce(max(id), 0) + 1, ?2, ?3, ?4 FROM events WHERE job_id = ?1
			RETURNING id`},

		// Reserve: jobs_ready yields a model's jobs in hand-out order. A job past its deadline
		// is skipped here and expired by the next maintenance pass.
		{&s.candidates, `SELECT n, prio, seq FROM jobs
			WHERE status = 'queued' AND model = ?1
				AND (available_at IS NULL OR available_at <= ?2) AND (deadline IS NULL OR deadline >= ?2)
			ORDER BY prio, seq LIMIT ?3`},
		{&s.start, `UPDATE jobs SET status = 'running', attempts = attempts + 1, delivery = delivery + 1,
			worker_id = ?, started_at = ?, lease_until = ?
			WHERE n = ? AND status = 'queued' RETURNING #JOB, delivery`},
		// The unary + keeps SQLite off jobs_ready (model = ?) and on jobs_delayed, which holds
		// only the few jobs in backoff.
		{&s.nextAvailable, `SELECT min(available_at) FROM jobs
			WHERE status = 'queued' AND available_at IS NOT NULL AND available_at > ? AND +model = ?`},

		// Maintenance: lapsed leases, deadlines, and backoffs that end.
		{&s.lapsed, `SELECT n, id, model, attempts, max_attempts, worker_id FROM jobs
			WHERE status = 'running' AND lease_until < ?`},
		// A lapsed job keeps its seq: it goes back to the front of its priority.
		{&s.requeueLapsed, `UPDATE jobs SET status = 'queued', lease_until = NULL, available_at = NULL WHERE n = ?`},
		{&s.expire, `UPDATE jobs SET status = 'expired', finished_at = ?, err_code = ?, err_message = ?, err_retryable = 0
			WHERE status = 'queued' AND deadline IS NOT NULL AND deadline < ? RETURNING id`},
		{&s.dueModels, `SELECT DISTINCT model FROM jobs
			WHERE status = 'queued' AND available_at IS NOT NULL AND available_at > ? AND available_at <= ?`},

		// Leases.
		{&s.fence, `SELECT status, attempts, max_attempts, delivery, worker_id, lease_until, model FROM jobs WHERE id = ?`},
		{&s.extend, `UPDATE jobs SET lease_until = ? WHERE id = ?`},
		// A released job keeps its seq (front of its priority) and gives its attempt back.
		{&s.release, `UPDATE jobs SET status = 'queued', attempts = attempts - 1, lease_until = NULL, available_at = NULL
			WHERE id = ?`},
		{&s.complete, `UPDATE jobs SET status = 'succeeded', result = ?, finished_at = ?, lease_until = NULL,
			err_code = NULL, err_message = NULL, err_retryable = 0 WHERE id = ?`},
		// A retried job takes a new seq: after its backoff it queues behind the jobs already waiting.
		{&s.retry, `UPDATE jobs SET status = 'queued', lease_until = NULL, available_at = ?, seq = ?, queued_at = ?,
			err_code = ?, err_message = ?, err_retryable = ? WHERE id = ?`},
		{&s.failJob, `UPDATE jobs SET status = 'failed', dead_letter = 1, finished_at = ?, lease_until = NULL,
			err_code = ?, err_message = ?, err_retryable = ? WHERE id = ?`},

		// Administration.
		{&s.cancel, `UPDATE jobs SET status = 'canceled', finished_at = ?, lease_until = NULL
			WHERE id = ? AND status IN ('queued', 'running') RETURNING #JOB`},
		{&s.requeue, `UPDATE jobs SET status = 'queued', attempts = 0, dead_letter = 0, result = NULL,
			err_code = NULL, err_message = NULL, err_retryable = 0, finished_at = NULL, lease_until = NULL,
			available_at = NULL, seq = ?, queued_at = ?
			WHERE id = ? AND dead_letter = 1 RETURNING #JOB`},

		// Retention, in batches so that one maintenance pass never holds the write lock for long.
		{&s.forget, `DELETE FROM jobs WHERE n IN
			(SELECT n FROM jobs WHERE finished_at IS NOT NULL AND finished_at < ? LIMIT ?)
			RETURNING id, owner, idem_key`},
		{&s.forgetEvents, `DELETE FROM events WHERE job_id = ?`},
		{&s.forgetIdem, `DELETE FROM idempotency WHERE owner = ? AND key = ? AND job_id = ?`},
		{&s.expireIdem, `DELETE FROM idempotency WHERE expires_at <= ?`},

		// Workers.
		{&s.putWorker, `INSERT OR REPLACE INTO workers (id, info, last_heartbeat) VALUES (?, ?, ?)`},
		{&s.beatWorker, `UPDATE workers SET last_heartbeat = ? WHERE id = ? AND last_heartbeat >= ?`},
		{&s.dropWorker, `DELETE FROM workers WHERE id = ?`},
		{&s.staleWorkers, `DELETE FROM workers WHERE last_heartbeat < ?`},
	}
}

// readStmts run on the pool of read connections, outside the write lock.
type readStmts struct {
	getJob, jobExists, events, deadLetters          *sql.Stmt
	queueStats, workers                             *sql.Stmt
	listAll, listOwner, listStatus, listOwnerStatus *sql.Stmt
}

func (s *readStmts) defs() []stmtDef {
	return []stmtDef{
		{&s.getJob, `SELECT #JOB FROM jobs WHERE id = ?`},
		{&s.jobExists, `SELECT count(*) FROM jobs WHERE id = ?`},
		{&s.events, `SELECT id, type, data, time FROM events WHERE job_id = ? AND id > ? ORDER BY id LIMIT ?`},
		{&s.deadLetters, `SELECT #JOB FROM jobs WHERE dead_letter = 1 ORDER BY finished_at DESC, n DESC LIMIT ?`},
		// One statement, so one snapshot: a job moving from queued to running is counted once.
		{&s.queueStats, `SELECT m.model, coalesce(q.depth, 0), q.oldest, coalesce(r.running, 0)
			FROM models m
			LEFT JOIN (SELECT model, count(*) AS depth, min(queued_at) AS oldest
				FROM jobs WHERE status = 'queued' GROUP BY model) q ON q.model = m.model
			LEFT JOIN (SELECT model, count(*) AS running
				FROM jobs WHERE status = 'running' GROUP BY model) r ON r.model = m.model
			ORDER BY m.model`},
		{&s.workers, `SELECT info, last_heartbeat FROM workers WHERE last_heartbeat >= ? ORDER BY id`},

		// List: one statement per filter, so that each walks its own index. The cursor condition
		// starts below the last page; a first page passes the largest values.
		{&s.listAll, `SELECT #JOB FROM jobs
			WHERE (created_at, n) < (?, ?) ORDER BY created_at DESC, n DESC LIMIT ?`},
		{&s.listOwner, `SELECT #JOB FROM jobs
			WHERE owner = ? AND (created_at, n) < (?, ?) ORDER BY created_at DESC, n DESC LIMIT ?`},
		{&s.listStatus, `SELECT #JOB FROM jobs
			WHERE status = ? AND (created_at, n) < (?, ?) ORDER BY created_at DESC, n DESC LIMIT ?`},
		{&s.listOwnerStatus, `SELECT #JOB FROM jobs
			WHERE owner = ? AND status = ? AND (created_at, n) < (?, ?) ORDER BY created_at DESC, n DESC LIMIT ?`},
	}
}

// stmtDef pairs a statement field with its SQL; #JOB stands for jobCols.
type stmtDef struct {
	stmt  **sql.Stmt
	query string
}

// preparer is a *sql.DB or a *sql.Conn.
type preparer interface {
	PrepareContext(ctx context.Context, query string) (*sql.Stmt, error)
}

// prepareAll prepares every statement of defs on p.
func prepareAll(ctx context.Context, p preparer, defs []stmtDef) error {
	for _, d := range defs {
		q := strings.ReplaceAll(d.query, "#JOB", jobCols)
		st, err := p.PrepareContext(ctx, q)
		if err != nil {
			return fmt.Errorf("prepare %q: %w", firstLine(q), err)
		}
		*d.stmt = st
	}
	return nil
}

// closeAll closes the statements of defs that were prepared.
func closeAll(defs []stmtDef) error {
	var errs []error
	for _, d := range defs {
		if *d.stmt != nil {
			errs = append(errs, (*d.stmt).Close())
			*d.stmt = nil
		}
	}
	return errors.Join(errs...)
}

func firstLine(s string) string {
	s, _, _ = strings.Cut(s, "\n")
	return s
}
