package redisbroker

import (
	"context"
	"fmt"

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
