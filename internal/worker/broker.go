package worker

import (
	"context"
	"encoding/json"
	"time"

	"github.com/neovratz/neovratz/internal/broker"
	"github.com/neovratz/neovratz/internal/job"
)

// Broker is the part of the broker contract (package broker) that a worker uses. Both broker
// implementations satisfy it, and so does the HTTP client of package brokerhttp, which is how a
// worker that cannot reach Redis pulls jobs from a remote API.
type Broker interface {
	Reserve(ctx context.Context, workerID string, models []string, n int) ([]*broker.Lease, error)
	ExtendLease(ctx context.Context, l *broker.Lease) error
	Release(ctx context.Context, l *broker.Lease) error
	Complete(ctx context.Context, l *broker.Lease, result json.RawMessage) error
	Fail(ctx context.Context, l *broker.Lease, failure job.Error) error
	AppendEvent(ctx context.Context, l *broker.Lease, ev broker.Event) (string, error)
	// Events is read to learn at once that a running job was canceled.
	Events(ctx context.Context, id, after string, limit int, wait time.Duration) ([]broker.Event, error)

	RegisterWorker(ctx context.Context, w broker.WorkerInfo) error
	HeartbeatWorker(ctx context.Context, id string) error
	DeregisterWorker(ctx context.Context, id string) error
}

// EventBatcher is implemented by brokers that append several events in one round trip (the HTTP
// client does). The worker uses it, when present, to write the deltas that piled up while the
// previous write was in flight.
type EventBatcher interface {
	// AppendEvents appends evs in order and returns how many it appended, all of them unless
	// it also returns an error.
	AppendEvents(ctx context.Context, l *broker.Lease, evs []broker.Event) (int, error)
}

// WorkerLister is implemented by brokers that can show the worker its registry entry (both
// brokers can; the HTTP client shows the entries of the workers it registered). The worker reads
// its entry with each heartbeat to learn that an operator asked it to drain (the API's
// POST /v1/admin/workers/{id}/drain sets Draining): it then stops taking jobs, finishes those it
// runs and stays registered, idle, until it is stopped.
type WorkerLister interface {
	Workers(ctx context.Context) ([]broker.WorkerInfo, error)
}

var (
	_ Broker       = broker.Broker(nil)
	_ WorkerLister = broker.Broker(nil)
)

// CancelChecker is implemented by brokers that tell in one call which of several jobs were
// canceled (both brokers do). A worker whose broker has it watches all its running jobs from one
// goroutine with a check every cancelCheckEvery (see cancelWatcher), instead of following each
// job's event log from a goroutine of its own; a broker without it (the HTTP client) gets the
// per-job watch.
type CancelChecker interface {
	Canceled(ctx context.Context, ids []string) ([]string, error)
}
