package redisbroker

import (
	"cmp"
	"context"
	"fmt"
	"slices"

	"github.com/redis/go-redis/v9"

	"github.com/neovratz/neovratz/internal/broker"
	"github.com/neovratz/neovratz/internal/job"
)

// DeadLetters lists dead-lettered jobs of every model, newest first. Each model keeps its own
// dead-letter ZSET (so that failing and requeueing stay one script in one slot); this merges
// them.
func (b *Broker) DeadLetters(ctx context.Context, limit int) ([]job.Job, error) {
	if err := b.open(); err != nil {
		return nil, err
	}
	if limit <= 0 {
		limit = defaultListLimit
	}
	limit = min(limit, maxListLimit)
	models, err := b.allModels(ctx)
	if err != nil {
		return nil, fmt.Errorf("dead letters: %w", err)
	}
	pipe := b.rdb.Pipeline()
	cmds := make([]*redis.ZSliceCmd, len(models))
	for i, m := range models {
		cmds[i] = pipe.ZRevRangeWithScores(ctx, b.k.model(m).dead(), 0, int64(limit-1))
	}
	if len(models) > 0 {
		if _, err := pipe.Exec(ctx); err != nil {
			return nil, fmt.Errorf("dead letters: %w", err)
		}
	}
	type entry struct {
		model, id string
		at        float64
	}
	var all []entry
	for i, m := range models {
		for _, z := range cmds[i].Val() {
			id, _ := z.Member.(string)
			all = append(all, entry{m, id, z.Score})
		}
	}
	slices.SortFunc(all, func(x, y entry) int { return cmp.Or(cmp.Compare(y.at, x.at), cmp.Compare(y.id, x.id)) })
	all = all[:min(len(all), limit)]

	pipe = b.rdb.Pipeline()
	hs := make([]*redis.MapStringStringCmd, len(all))
	for i, e := range all {
		hs[i] = pipe.HGetAll(ctx, b.k.model(e.model).job(e.id))
	}
	if len(all) > 0 {
		if _, err := pipe.Exec(ctx); err != nil {
			return nil, fmt.Errorf("dead letters: %w", err)
		}
	}
	var out []job.Job
	for i, e := range all {
		if len(hs[i].Val()) == 0 {
			// Kept DeadLetterRetention × Retention, then forgotten: drop it from the list.
			b.rdb.ZRem(ctx, b.k.model(e.model).dead(), e.id)
			continue
		}
		s, err := decodeJob(hs[i].Val())
		if err != nil {
			return nil, fmt.Errorf("dead letters: %w", err)
		}
		out = append(out, s.Job)
	}
	return out, nil
}

// Requeue takes a job out of the dead-letter list and queues it again, at the back of its
// priority, with its attempts reset.
func (b *Broker) Requeue(ctx context.Context, id string) (job.Job, error) {
	if err := b.open(); err != nil {
		return job.Job{}, err
	}
	model, err := b.modelOf(ctx, id)
	if err != nil {
		return job.Job{}, fmt.Errorf("requeue %s: %w", id, err)
	}
	_, nowMS, nowNS := b.now()
	v, err := scriptRequeue.Run(ctx, b.rdb, b.k.model(model).jobKeys(id), id, nowMS, nowNS).Result()
	if err != nil {
		return job.Job{}, fmt.Errorf("requeue %s: %w", id, err)
	}
	code, rest, err := reply(v)
	if err != nil {
		return job.Job{}, fmt.Errorf("requeue %s: %w", id, err)
	}
	if code != "ok" {
		return job.Job{}, fmt.Errorf("requeue %s: %w", id, broker.ErrNotFound)
	}
	s, err := decodeFlat(rest[0])
	if err != nil {
		return job.Job{}, fmt.Errorf("requeue %s: %w", id, err)
	}
	b.unfinished(ctx, id, s.Owner)
	return s.Job, nil
}
