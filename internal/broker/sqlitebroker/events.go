package sqlitebroker

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/neovratz/neovratz/internal/broker"
	"github.com/neovratz/neovratz/internal/job"
)

// Limits of the event log.
const (
	defaultEventsLimit = 100
	maxEventsLimit     = 1000
	maxEventTypeLen    = 64
	maxEventBytes      = job.MaxInputBytes // a progress event may carry a preview image
)

// event appends an event to a job's log and returns its id.
func (t *wtx) event(jobID, typ string, data []byte) (int64, error) {
	var id int64
	if err := t.w.addEvent.QueryRowContext(t.ctx, jobID, typ, nullBytes(data), t.now).Scan(&id); err != nil {
		return 0, fmt.Errorf("append %s event to %s: %w", typ, jobID, err)
	}
	t.wakeLogs = append(t.wakeLogs, jobID)
	return id, nil
}

// statusEvent appends the status event that every change of a job's status writes.
func (t *wtx) statusEvent(jobID string, s job.Status, e *job.Error) error {
	_, err := t.event(jobID, broker.EventStatus, statusData(s, e))
	return err
}

// AppendEvent adds a worker's event to the log of the job it holds.
func (b *Broker) AppendEvent(ctx context.Context, l *broker.Lease, ev broker.Event) (string, error) {
	if err := validateEvent(ev); err != nil {
		return "", leaseErr("append event", l, err)
	}
	var id int64
	err := b.write(ctx, func(t *wtx) error {
		if _, err := t.fence(l); err != nil {
			return err
		}
		var err error
		id, err = t.event(l.Job.ID, ev.Type, ev.Data)
		return err
	})
	if err != nil {
		return "", leaseErr("append event", l, err)
	}
	return eventID(id), nil
}

func validateEvent(ev broker.Event) error {
	switch {
	case ev.Type == "":
		return errors.New("event has no type")
	case ev.Type == broker.EventStatus:
		return errors.New("status events are the broker's to write")
	case len(ev.Type) > maxEventTypeLen:
		return fmt.Errorf("event type is longer than %d bytes", maxEventTypeLen)
	case len(ev.Data) > maxEventBytes:
		return fmt.Errorf("event data is larger than %d bytes", maxEventBytes)
	case len(ev.Data) > 0 && !json.Valid(ev.Data):
		return errors.New("event data is not valid JSON")
	}
	return nil
}

// Events reads a job's log after the event with id after, waiting up to wait for one when there
// is none yet.
func (b *Broker) Events(ctx context.Context, id, after string, limit int, wait time.Duration) ([]broker.Event, error) {
	afterID, err := parseEventID(after)
	if err != nil {
		return nil, fmt.Errorf("events of %s: %w", id, err)
	}
	if limit <= 0 {
		limit = defaultEventsLimit
	}
	limit = min(limit, maxEventsLimit)

	var w *waiter
	if wait > 0 {
		// Subscribed before the first read: an event appended between the read and the wait
		// still wakes us.
		w = b.logs.subscribe(id)
		defer b.logs.unsubscribe(w)
	}
	var timeout <-chan time.Time
	for {
		evs, err := b.readEvents(ctx, id, afterID, limit)
		if err != nil {
			return nil, fmt.Errorf("events of %s: %w", id, err)
		}
		if len(evs) > 0 || wait <= 0 {
			return evs, nil
		}
		if timeout == nil {
			timer := time.NewTimer(wait)
			defer timer.Stop()
			timeout = timer.C
		}
		select {
		case <-w.c:
		case <-timeout:
			return nil, nil
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-b.done:
			return nil, broker.ErrClosed
		}
	}
}

// readEvents reads one page of a job's log; ErrNotFound when the job does not exist.
func (b *Broker) readEvents(ctx context.Context, id string, after int64, limit int) ([]broker.Event, error) {
	if b.closed() {
		return nil, broker.ErrClosed
	}
	rows, err := b.r.events.QueryContext(ctx, id, after, limit)
	if err != nil {
		return nil, b.readErr(err)
	}
	defer rows.Close()
	var evs []broker.Event
	for rows.Next() {
		var (
			ev   broker.Event
			n    int64
			data []byte
			at   int64
		)
		if err := rows.Scan(&n, &ev.Type, &data, &at); err != nil {
			return nil, b.readErr(err)
		}
		ev.ID, ev.Time = eventID(n), fromNanos(at)
		if len(data) > 0 {
			ev.Data = json.RawMessage(data)
		}
		evs = append(evs, ev)
	}
	if err := rows.Err(); err != nil {
		return nil, b.readErr(err)
	}
	if len(evs) > 0 {
		return evs, nil // a job and its events are deleted together
	}
	var exists int
	if err := b.r.jobExists.QueryRowContext(ctx, id).Scan(&exists); err != nil {
		if errors.Is(err, sql.ErrNoRows) {
			return nil, broker.ErrNotFound
		}
		return nil, b.readErr(err)
	}
	if exists == 0 {
		return nil, broker.ErrNotFound
	}
	return nil, nil
}
