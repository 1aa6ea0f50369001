package redisbroker

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/neovratz/neovratz/internal/broker"
)

// Event limits: a page without a limit, and the most one page may hold.
const (
	defaultEventLimit = 100
	maxEventLimit     = 1000
)

// Events reads a job's log after the event with id after (exclusive; "" = from the start). With
// nothing there and wait > 0, it blocks in XREAD for the next event, in bounded slices so a
// canceled ctx or Close ends it.
//
// A follower calls it once per wake-up, so it keeps to one round trip when it can: the job's
// model comes from the cache (modelCache), and with wait > 0 and a cached model it goes straight
// to XREAD BLOCK, which answers at once when the log already holds events past after; that the
// job exists is then checked only when a slice ends with nothing.
func (b *Broker) Events(ctx context.Context, id, after string, limit int, wait time.Duration) ([]broker.Event, error) {
	if err := b.open(); err != nil {
		return nil, err
	}
	if limit <= 0 {
		limit = defaultEventLimit
	}
	limit = min(limit, maxEventLimit)
	start, last := "-", "0-0"
	if after != "" {
		if _, err := parseStreamID(after); err != nil {
			return nil, fmt.Errorf("events %s: bad event id %q", id, after)
		}
		start, last = "("+after, after
	}
	model, cached, err := b.cachedModelOf(ctx, id)
	if err != nil {
		return nil, fmt.Errorf("events %s: %w", id, err)
	}
	if !cached || wait <= 0 {
		evs, found, err := b.eventRange(ctx, model, id, start, limit)
		if err == nil && !found && cached {
			b.models.forget(id)
			if model, err = b.modelOf(ctx, id); err == nil {
				evs, found, err = b.eventRange(ctx, model, id, start, limit)
			}
		}
		if err != nil {
			return nil, fmt.Errorf("events %s: %w", id, err)
		}
		if !found {
			return nil, fmt.Errorf("events %s: %w", id, broker.ErrNotFound)
		}
		if len(evs) > 0 || wait <= 0 {
			return evs, nil
		}
		cached = false // checked just now
	}

	end := time.Now().Add(wait)
	for {
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		if err := b.open(); err != nil {
			return nil, err
		}
		d := min(blockSlice, time.Until(end))
		if dl, ok := ctx.Deadline(); ok {
			d = min(d, time.Until(dl))
		}
		if d < time.Millisecond {
			if time.Now().Before(end) && ctx.Err() == nil {
				d = time.Millisecond // BLOCK 0 would mean forever
			} else {
				return nil, ctx.Err()
			}
		}
		mk := b.k.model(model)
		res, err := b.blk.XRead(context.WithoutCancel(ctx), &redis.XReadArgs{
			Streams: []string{mk.events(id), last},
			Count:   int64(limit),
			Block:   d,
		}).Result()
		if err != nil && !errors.Is(err, redis.Nil) {
			if b.closed.Load() {
				return nil, broker.ErrClosed // Close ended the blocking read
			}
			return nil, fmt.Errorf("events %s: %w", id, err)
		}
		if len(res) > 0 && len(res[0].Messages) > 0 {
			return decodeEvents(res[0].Messages)
		}
		if !cached {
			continue
		}
		// A slice without events on a cached model: check that the job is there at all.
		n, err := b.rdb.Exists(ctx, mk.job(id)).Result()
		if err != nil {
			return nil, fmt.Errorf("events %s: %w", id, err)
		}
		cached = false
		if n == 0 {
			b.models.forget(id)
			if model, err = b.modelOf(ctx, id); err != nil {
				return nil, fmt.Errorf("events %s: %w", id, err)
			}
			evs, found, err := b.eventRange(ctx, model, id, start, limit)
			if err != nil {
				return nil, fmt.Errorf("events %s: %w", id, err)
			}
			if !found {
				return nil, fmt.Errorf("events %s: %w", id, broker.ErrNotFound)
			}
			if len(evs) > 0 {
				return evs, nil
			}
		}
	}
}

// eventRange reads a page of a job's log of a known model in one round trip; found tells
// whether the job exists.
func (b *Broker) eventRange(ctx context.Context, model, id, start string, limit int) (evs []broker.Event, found bool, err error) {
	mk := b.k.model(model)
	pipe := b.rdb.Pipeline()
	exists := pipe.Exists(ctx, mk.job(id))
	rng := pipe.XRangeN(ctx, mk.events(id), start, "+", int64(limit))
	if _, err := pipe.Exec(ctx); err != nil {
		return nil, false, err
	}
	if exists.Val() == 0 {
		return nil, false, nil
	}
	evs, err = decodeEvents(rng.Val())
	return evs, true, err
}

func decodeEvents(msgs []redis.XMessage) ([]broker.Event, error) {
	out := make([]broker.Event, 0, len(msgs))
	for _, m := range msgs {
		typ, _ := m.Values["type"].(string)
		data, _ := m.Values["data"].(string)
		ts, _ := m.Values["time"].(string)
		t, err := parseNanos(ts)
		if err != nil {
			return nil, fmt.Errorf("event %s: time: %w", m.ID, err)
		}
		ev := broker.Event{ID: m.ID, Type: typ, Time: t}
		if data != "" {
			ev.Data = json.RawMessage(data)
		}
		out = append(out, ev)
	}
	return out, nil
}
