// Package broker defines the contract between the API and the workers: a durable job queue with
// leases, retries, dead letters, per-job event logs and a worker registry. Two implementations
// satisfy it — redisbroker (Redis Streams, for production) and sqlitebroker (embedded, for
// `neovratz serve`) — and one conformance suite, brokertest, runs against both.
package broker

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/neovratz/neovratz/internal/job"
)

// Broker is the whole contract. Every method is safe for concurrent use.
type Broker interface {
	// Enqueue validates j (after filling its defaults with job.Normalize) and stores it together
	// with its queue entry and idempotency key, atomically. When j.IdempotencyKey is set and a
	// job with the same owner and key exists (within the retention period), nothing is enqueued
	// and that job is returned with existing = true. A model whose queue holds Config.QueueCap
	// queued jobs refuses with a *QueueFullError (errors.Is ErrQueueFull).
	Enqueue(ctx context.Context, j job.Job) (stored job.Job, existing bool, err error)

	// Reserve blocks until at least one job for one of models is available, then hands out up
	// to n of them, each under a lease of Config.Lease: highest priority first, FIFO within a
	// priority. It returns ctx.Err() when ctx ends first. It never sleep-polls: it wakes when a
	// job is enqueued. Queued jobs past their deadline are expired, not handed out.
	Reserve(ctx context.Context, workerID string, models []string, n int) ([]*Lease, error)

	// ExtendLease renews a lease for another Config.Lease and updates l.Until. It returns
	// ErrCanceled when the job was canceled (the holder must abort) and ErrLeaseLost when the
	// lease lapsed or the job was handed to someone else.
	ExtendLease(ctx context.Context, l *Lease) error

	// Release hands a reserved job back to the front of its queue without counting an attempt
	// (for a worker that drains). Errors as ExtendLease.
	Release(ctx context.Context, l *Lease) error

	// Complete finishes a job successfully with its result, exactly once. Errors as ExtendLease.
	Complete(ctx context.Context, l *Lease, result json.RawMessage) error

	// Fail ends an attempt. A retryable failure goes back to the queue after Config.Backoff,
	// until the job has used MaxAttempts; then, and for a non-retryable failure, the job fails
	// and enters the dead-letter list. Errors as ExtendLease.
	Fail(ctx context.Context, l *Lease, failure job.Error) error

	// Cancel cancels a queued or running job and returns it. A running job's holder learns of it
	// from ExtendLease/Complete/Fail/AppendEvent (ErrCanceled) and from the job's event log,
	// which ends with a status event. A job already finished is returned with ErrFinished.
	Cancel(ctx context.Context, id string) (job.Job, error)

	// AppendEvent adds an event to a running job's log on behalf of the lease holder and returns
	// the event's id. Errors as ExtendLease.
	AppendEvent(ctx context.Context, l *Lease, ev Event) (string, error)

	// Events returns up to limit events of job id that follow the event with id after ("" = from
	// the start), oldest first. When there are none and wait > 0 it blocks up to wait (or until
	// ctx ends) for the next. Any process can read any job's events; event ids are opaque but
	// resumable (an SSE Last-Event-ID). Unknown job: ErrNotFound.
	Events(ctx context.Context, id, after string, limit int, wait time.Duration) ([]Event, error)

	// Get returns a job by id, or ErrNotFound.
	Get(ctx context.Context, id string) (job.Job, error)

	// List returns jobs newest first, filtered and paged; pass the returned cursor back for the
	// next page ("" when there is none).
	List(ctx context.Context, f ListFilter) (jobs []job.Job, next string, err error)

	// QueueStats returns depth, running count and oldest queued age for every model that has
	// had a job, sorted by model.
	QueueStats(ctx context.Context) ([]QueueStats, error)

	// DeadLetters lists failed jobs in the dead-letter list, newest first.
	DeadLetters(ctx context.Context, limit int) ([]job.Job, error)

	// Requeue takes a job out of the dead-letter list and queues it again with its attempts reset.
	// ErrNotFound when it is not there.
	Requeue(ctx context.Context, id string) (job.Job, error)

	// RegisterWorker adds or replaces a worker in the registry and counts as a heartbeat.
	RegisterWorker(ctx context.Context, w WorkerInfo) error
	// HeartbeatWorker marks a worker alive. ErrNotFound when the registry has forgotten it (its
	// heartbeats stopped for Config.WorkerTTL): it must register again.
	HeartbeatWorker(ctx context.Context, id string) error
	// DeregisterWorker removes a worker from the registry.
	DeregisterWorker(ctx context.Context, id string) error
	// Workers lists live workers (heartbeat within Config.WorkerTTL), sorted by id.
	Workers(ctx context.Context) ([]WorkerInfo, error)

	// Ping reports whether the broker's store is reachable.
	Ping(ctx context.Context) error
	// Close stops the broker's background work and releases its resources.
	Close() error
}

// Lease is a worker's hold on one running job. Attempt fences it: once the job is handed out
// again, the old lease can no longer change the job.
type Lease struct {
	Job      job.Job
	WorkerID string
	Attempt  int
	Until    time.Time
	// Token is implementation data that identifies the delivery (a stream entry id, a row id).
	Token string
}

// Event is one entry of a job's event log.
type Event struct {
	ID   string          `json:"id"`
	Type string          `json:"type"`
	Data json.RawMessage `json:"data,omitempty"`
	Time time.Time       `json:"time"`
}

// Event types. Workers write deltas, progress and results; the broker writes a status event at
// every change of status, so a log of a finished job always ends with a terminal status event.
const (
	EventDelta    = "delta"
	EventProgress = "progress"
	EventStatus   = "status"
)

// StatusEvent is the data of an EventStatus event.
type StatusEvent struct {
	Status job.Status `json:"status"`
	Error  *job.Error `json:"error,omitempty"`

	// The event that ends a job that succeeded also carries its result, when that is at most
	// MaxEventResult bytes, with its timings and attempts, so that whoever follows the log —
	// the API answering a synchronous call — has the finished job without reading it (see
	// Finished).
	Result     json.RawMessage `json:"result,omitempty"`
	StartedAt  time.Time       `json:"started_at,omitzero"`
	FinishedAt time.Time       `json:"finished_at,omitzero"`
	Attempts   int             `json:"attempts,omitempty"`
}

// MaxEventResult is the largest result that the final status event carries; a larger one (an
// image) is stored only with the job, not twice.
const MaxEventResult = 64 << 10

// FinalStatus returns the data of the status event that ends j (a running job, as its lease
// holds it) with result at finishedAt.
func FinalStatus(j job.Job, result json.RawMessage, finishedAt time.Time) json.RawMessage {
	st := StatusEvent{Status: job.StatusSucceeded}
	if len(result) > 0 && len(result) <= MaxEventResult && json.Valid(result) {
		st.Result = result
		st.StartedAt = j.StartedAt.UTC()
		st.FinishedAt = finishedAt.UTC()
		st.Attempts = j.Attempts
	}
	b, err := json.Marshal(st)
	if err != nil {
		return json.RawMessage(`{"status":"succeeded"}`)
	}
	return b
}

// Finished returns j — the job as Enqueue returned it — finished as the final status event st
// says, and whether st said enough for that: a job that succeeded with its result in the event.
// Otherwise (a failure, a large result) the caller reads the job.
func (st StatusEvent) Finished(j job.Job) (job.Job, bool) {
	if st.Status != job.StatusSucceeded || len(st.Result) == 0 {
		return j, false
	}
	j.Status = st.Status
	j.Result = st.Result
	j.StartedAt = st.StartedAt
	j.FinishedAt = st.FinishedAt
	j.Attempts = st.Attempts
	return j, true
}

// ListFilter selects jobs for List.
type ListFilter struct {
	Owner  string     // "" = every owner
	Status job.Status // "" = every status
	Limit  int        // 0 = 50; capped at 1000
	Cursor string
}

// QueueStats describes one model's queue.
type QueueStats struct {
	Model           string        `json:"model"`
	Depth           int           `json:"depth"`
	Running         int           `json:"running"`
	OldestQueuedAge time.Duration `json:"oldest_queued_age"`
}

// WorkerInfo is a worker's entry in the registry.
type WorkerInfo struct {
	ID            string    `json:"id"`
	Hostname      string    `json:"hostname,omitempty"`
	Version       string    `json:"version,omitempty"`
	Models        []string  `json:"models"`
	Slots         int       `json:"slots"`
	Engine        string    `json:"engine,omitempty"`
	Hardware      string    `json:"hardware,omitempty"`
	MetricsAddr   string    `json:"metrics_addr,omitempty"`
	Draining      bool      `json:"draining,omitempty"`
	StartedAt     time.Time `json:"started_at"`
	LastHeartbeat time.Time `json:"last_heartbeat"`
	// ModelInfo describes the models in Models (kind, context length) for the API's /v1/models;
	// optional, and a model missing from it is listed without those details.
	ModelInfo []ModelInfo `json:"model_info,omitempty"`
}

// ModelInfo is what the registry tells clients about one model a worker serves.
type ModelInfo struct {
	Name          string `json:"name"`
	Kind          string `json:"kind,omitempty"`           // text, image or embedding
	ContextLength int    `json:"context_length,omitempty"` // in tokens; 0 = unknown
}

// Config holds the tunables both implementations share. Zero values take the defaults.
type Config struct {
	Lease     time.Duration // lease length; default 30s
	QueueCap  int           // most queued jobs per model; 0 = no cap
	Retention time.Duration // how long finished jobs and their events are kept; default 24h
	WorkerTTL time.Duration // a worker without heartbeat this long is gone; default 30s
	// Backoff gives the delay before retry number attempt (1-based); default BackoffExponential.
	Backoff func(attempt int) time.Duration
	// Now is the clock for timestamps; default time.Now.
	Now func() time.Time
}

// WithDefaults returns c with every zero field set to its default.
func (c Config) WithDefaults() Config {
	if c.Lease <= 0 {
		c.Lease = 30 * time.Second
	}
	if c.Retention <= 0 {
		c.Retention = 24 * time.Hour
	}
	if c.WorkerTTL <= 0 {
		c.WorkerTTL = 30 * time.Second
	}
	if c.Backoff == nil {
		c.Backoff = BackoffExponential
	}
	if c.Now == nil {
		c.Now = time.Now
	}
	return c
}

// BackoffExponential waits 1s, 2s, 4s … capped at 5 minutes.
func BackoffExponential(attempt int) time.Duration {
	if attempt < 1 {
		attempt = 1
	}
	if attempt > 9 {
		return 5 * time.Minute
	}
	return min(time.Second<<(attempt-1), 5*time.Minute)
}

// Errors of the contract, matched with errors.Is.
var (
	ErrNotFound  = errors.New("job not found")
	ErrQueueFull = errors.New("queue full")
	ErrLeaseLost = errors.New("lease lost")
	ErrCanceled  = errors.New("job canceled")
	ErrFinished  = errors.New("job already finished")
	ErrClosed    = errors.New("broker closed")
)

// QueueFullError is returned by Enqueue when a model's queue is at its cap.
type QueueFullError struct {
	Model string
	Cap   int
}

func (e *QueueFullError) Error() string {
	return fmt.Sprintf("queue for model %q is full (%d jobs)", e.Model, e.Cap)
}

// Is makes errors.Is(err, ErrQueueFull) true.
func (e *QueueFullError) Is(target error) bool { return target == ErrQueueFull }
