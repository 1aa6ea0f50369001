package sqlitebroker

import (
	"context"
	"database/sql"
	"fmt"
)

// applicationID marks a file as a neovratz broker database (PRAGMA application_id, "nvrz"), so
// Open can refuse another program's SQLite file instead of adding tables to it.
const applicationID = 0x6e76727a

// migrations[i] takes the schema from version i to version i+1 (PRAGMA user_version). Append
// new steps; never edit a step that has shipped.
//
// There are no foreign keys: the only dependent rows (a job's events and idempotency key) are
// deleted with the job by the retention pass, in the same transaction, and enforcing a key would
// cost a lookup of the job on every appended event, the most frequent write.
var migrations = []string{
	// 1: the initial schema.
	`
CREATE TABLE jobs (
	n             INTEGER PRIMARY KEY,  -- insertion order: List's newest-first order and cursor
	id            TEXT    NOT NULL UNIQUE,
	kind          TEXT    NOT NULL,
	model         TEXT    NOT NULL,
	owner         TEXT    NOT NULL,
	priority      TEXT    NOT NULL,
	prio          INTEGER NOT NULL,     -- job.Priority.Rank(): 0 high, 1 normal, 2 low
	status        TEXT    NOT NULL,
	attempts      INTEGER NOT NULL,
	max_attempts  INTEGER NOT NULL,
	idem_key      TEXT    NOT NULL,
	input         BLOB,
	result        BLOB,
	err_code      TEXT,                 -- err_message NULL means no error
	err_message   TEXT,
	err_retryable INTEGER NOT NULL DEFAULT 0,
	worker_id     TEXT    NOT NULL DEFAULT '',
	created_at    INTEGER NOT NULL,     -- times are Unix nanoseconds
	started_at    INTEGER,
	finished_at   INTEGER,
	deadline      INTEGER,
	seq           INTEGER NOT NULL,     -- FIFO position among queued jobs of one model and priority
	queued_at     INTEGER NOT NULL,     -- when the job last entered the queue
	available_at  INTEGER,              -- retry backoff: not handed out before this (NULL: at once)
	lease_until   INTEGER,              -- while running: when the holder's lease lapses
	delivery      INTEGER NOT NULL DEFAULT 0, -- counts hand-outs; the fencing token of a lease
	dead_letter   INTEGER NOT NULL DEFAULT 0
) STRICT;

-- The partial indexes hold only the rows a hot query looks for, so they stay small however many
-- finished jobs the retention period keeps.

-- Reserve: the next job of a model, highest priority first, FIFO within it. available_at,
-- deadline and queued_at make it covering for Reserve's filters and for QueueStats.
CREATE INDEX jobs_ready ON jobs (model, prio, seq, available_at, deadline, queued_at) WHERE status = 'queued';
-- Delayed retries, for the wake-up timer.
CREATE INDEX jobs_delayed ON jobs (available_at) WHERE status = 'queued' AND available_at IS NOT NULL;
-- Queued jobs that can expire.
CREATE INDEX jobs_deadline ON jobs (deadline) WHERE status = 'queued' AND deadline IS NOT NULL;
-- Running jobs by lease deadline, for the reclaim of lapsed leases and the running counts.
CREATE INDEX jobs_running ON jobs (lease_until, model) WHERE status = 'running';
-- Finished jobs, for retention.
CREATE INDEX jobs_finished ON jobs (finished_at) WHERE finished_at IS NOT NULL;
-- The dead-letter list, newest first.
CREATE INDEX jobs_dead ON jobs (finished_at) WHERE dead_letter = 1;
-- List, newest first (n, the rowid, ends every index and breaks ties of created_at). There is
-- no index by status: it would change at every change of status, and a List by status alone
-- (an administrator's view) can walk jobs_created instead.
CREATE INDEX jobs_owner ON jobs (owner, created_at);
CREATE INDEX jobs_created ON jobs (created_at);

-- A job's log is one range of this table's key: appending writes one page (a rowid table with
-- an index by job would write two), and reading a log is one range scan. Event ids count up
-- from 1 within each job, which is all a resuming reader needs.
CREATE TABLE events (
	job_id TEXT    NOT NULL,
	id     INTEGER NOT NULL,
	type   TEXT    NOT NULL,
	data   BLOB,
	time   INTEGER NOT NULL,
	PRIMARY KEY (job_id, id)
) STRICT, WITHOUT ROWID;

CREATE TABLE idempotency (
	owner      TEXT    NOT NULL,
	key        TEXT    NOT NULL,
	job_id     TEXT    NOT NULL,
	expires_at INTEGER NOT NULL,
	PRIMARY KEY (owner, key)
) STRICT, WITHOUT ROWID;
CREATE INDEX idempotency_expiry ON idempotency (expires_at);

-- Every model that has had a job, for QueueStats.
CREATE TABLE models (
	model TEXT PRIMARY KEY
) STRICT, WITHOUT ROWID;

CREATE TABLE workers (
	id             TEXT    PRIMARY KEY,
	info           BLOB    NOT NULL,    -- broker.WorkerInfo as JSON
	last_heartbeat INTEGER NOT NULL
) STRICT, WITHOUT ROWID;
`,
}

// schemaVersion is the version this code reads and writes.
var schemaVersion = len(migrations)

// migrate brings the database on conn up to schemaVersion, refusing files of other programs and
// of newer versions of neovratz.
func migrate(ctx context.Context, conn *sql.Conn) error {
	var appID, version int
	if err := conn.QueryRowContext(ctx, "PRAGMA application_id").Scan(&appID); err != nil {
		return fmt.Errorf("read application id: %w", err)
	}
	if err := conn.QueryRowContext(ctx, "PRAGMA user_version").Scan(&version); err != nil {
		return fmt.Errorf("read schema version: %w", err)
	}
	switch {
	case appID != 0 && appID != applicationID:
		return fmt.Errorf("%w: the file belongs to another application (application_id %#x)", ErrNotDatabase, appID)
	case version > schemaVersion:
		return fmt.Errorf("schema version %d is newer than this build supports (%d): upgrade neovratz", version, schemaVersion)
	case version == schemaVersion:
		return nil
	case version == 0:
		var tables int
		if err := conn.QueryRowContext(ctx, "SELECT count(*) FROM sqlite_schema").Scan(&tables); err != nil {
			return fmt.Errorf("read schema: %w", err)
		}
		if tables > 0 {
			return fmt.Errorf("%w: the SQLite file has tables but no neovratz schema", ErrNotDatabase)
		}
	}

	// One transaction for all steps: a failed upgrade leaves the file as it was.
	if _, err := conn.ExecContext(ctx, "BEGIN IMMEDIATE"); err != nil {
		return fmt.Errorf("migrate: %w", err)
	}
	for v := version; v < schemaVersion; v++ {
		if _, err := conn.ExecContext(ctx, migrations[v]); err != nil {
			_, _ = conn.ExecContext(context.WithoutCancel(ctx), "ROLLBACK")
			return fmt.Errorf("migrate schema to version %d: %w", v+1, err)
		}
	}
	// PRAGMAs cannot take parameters; both values are constants of this package.
	pragmas := fmt.Sprintf("PRAGMA application_id = %d; PRAGMA user_version = %d", applicationID, schemaVersion)
	if _, err := conn.ExecContext(ctx, pragmas); err != nil {
		_, _ = conn.ExecContext(context.WithoutCancel(ctx), "ROLLBACK")
		return fmt.Errorf("set schema version: %w", err)
	}
	if _, err := conn.ExecContext(ctx, "COMMIT"); err != nil {
		_, _ = conn.ExecContext(context.WithoutCancel(ctx), "ROLLBACK")
		return fmt.Errorf("commit schema: %w", err)
	}
	return nil
}
