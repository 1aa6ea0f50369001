package redisbroker

import (
	"context"
	"errors"
	"fmt"

	"github.com/redis/go-redis/v9"

	"github.com/neovratz/neovratz/internal/broker"
	"github.com/neovratz/neovratz/internal/job"
)

// Cancel cancels a queued or running job. A running job's holder finds out from its next fenced
// call (ErrCanceled) or from the canceled status event at the end of the job's log.
func (b *Broker) Cancel(ctx context.Context, id string) (job.Job, error) {
	if err := b.open(); err != nil {
		return job.Job{}, err
	}
	model, err := b.modelOf(ctx, id)
	if err != nil {
		return job.Job{}, fmt.Errorf("cancel %s: %w", id, err)
	}
	_, _, nowNS := b.now()
	v, err := scriptCancel.Run(ctx, b.rdb, b.k.model(model).jobKeys(id), nowNS, b.ttl()).Result()
	if err != nil {
		return job.Job{}, fmt.Errorf("cancel %s: %w", id, err)
	}
	code, rest, err := reply(v)
	if err != nil {
		return job.Job{}, fmt.Errorf("cancel %s: %w", id, err)
	}
	switch code {
	case "notfound":
		return job.Job{}, fmt.Errorf("cancel %s: %w", id, broker.ErrNotFound)
	case "finished", "ok":
		s, err := decodeFlat(rest[0])
		if err != nil {
			return job.Job{}, fmt.Errorf("cancel %s: %w", id, err)
		}
		if code == "finished" {
			return s.Job, fmt.Errorf("cancel %s: %w", id, broker.ErrFinished)
		}
		b.finished(ctx, id, s.Owner, b.ttl())
		return s.Job, nil
	}
	return job.Job{}, fmt.Errorf("cancel %s: unexpected script reply %q", id, code)
}

// Canceled returns those of ids whose jobs were canceled, in one round trip: a worker checks
// all its running jobs with it (see worker.CancelChecker). A job whose model this process does
// not know costs a lookup of its index first; a job that is gone is not reported.
func (b *Broker) Canceled(ctx context.Context, ids []string) ([]string, error) {
	if err := b.open(); err != nil {
		return nil, err
	}
	pipe := b.rdb.Pipeline()
	cmds := make([]*redis.StringCmd, len(ids))
	for i, id := range ids {
		model, _, err := b.cachedModelOf(ctx, id)
		if errors.Is(err, broker.ErrNotFound) {
			continue
		}
		if err != nil {
			return nil, fmt.Errorf("canceled: %w", err)
		}
		cmds[i] = pipe.HGet(ctx, b.k.model(model).job(id), "status")
	}
	if pipe.Len() == 0 {
		return nil, nil
	}
	if _, err := pipe.Exec(ctx); err != nil && !errors.Is(err, redis.Nil) {
		return nil, fmt.Errorf("canceled: %w", err)
	}
	var out []string
	for i, c := range cmds {
		if c != nil && c.Val() == string(job.StatusCanceled) {
			out = append(out, ids[i])
		}
	}
	return out, nil
}
