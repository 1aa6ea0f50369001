package redisbroker

import (
	"context"
	"errors"
	"fmt"

	"github.com/redis/go-redis/v9"

	"github.com/neovratz/neovratz/internal/broker"
	"github.com/neovratz/neovratz/internal/job"
)

// Enqueue stores and queues a job in one round trip: one pipeline writes the job's index key
// (SETNX, outside the model's slot), runs the enqueue script — idempotency key, queue cap, job
// hash, stream entry, status event, all in one step — and adds the listing entries (ZADD NX,
// so that an id another job holds keeps its entries). In durable mode on Redis ≥ 7.2 the
// pipeline ends with WAITAOF, so nothing is acknowledged before it is on disk.
//
// Only when the index already existed (an id reused: an expired job's, or a live job's under
// another model, which the script cannot see) does Enqueue look further, after the pipeline:
// an orphaned index is taken over; a live job of another model keeps its id, and the job just
// stored is discarded.
func (b *Broker) Enqueue(ctx context.Context, j job.Job) (job.Job, bool, error) {
	if err := b.open(); err != nil {
		return job.Job{}, false, err
	}
	now, nowMS, nowNS := b.now()
	j.Normalize(now)
	if err := j.Validate(); err != nil {
		return job.Job{}, false, fmt.Errorf("enqueue: %w", err)
	}
	mk := b.k.model(j.Model)
	idx := b.k.index(j.ID)

	ks := mk.jobKeys(j.ID)
	if j.IdempotencyKey != "" {
		ks = append(ks, mk.idem(j.Owner, j.IdempotencyKey))
	}
	args := append([]any{nowMS, nowNS, b.cfg.QueueCap, j.ID, j.Priority.Rank(), deadlineMS(&j)}, jobFields(&j)...)
	created := float64(j.CreatedAt.UnixMicro())

	var (
		setIdx          *redis.BoolCmd
		script, waitCmd *redis.Cmd
	)
	run := func() error {
		pipe := b.rdb.Pipeline()
		setIdx = pipe.SetNX(ctx, idx, j.Model, 0)
		script = scriptEnqueue.EvalSha(ctx, pipe, ks, args...)
		pipe.ZAddNX(ctx, b.k.all(), redis.Z{Score: created, Member: j.ID})
		if j.Owner != "" {
			pipe.ZAddNX(ctx, b.k.owner(j.Owner), redis.Z{Score: created, Member: j.ID})
		}
		pipe.SAdd(ctx, b.k.models(), j.Model)
		if b.waitAOF {
			waitCmd = pipe.Do(ctx, "waitaof", 1, 0, ms(waitAOFTimeout))
		}
		_, err := pipe.Exec(ctx)
		return err
	}
	err := run()
	if isNoScript(script.Err()) {
		if err = scriptEnqueue.Load(ctx, b.rdb).Err(); err == nil {
			err = run()
		}
	}
	if err != nil {
		if script.Err() != nil {
			err = script.Err()
		}
		return job.Job{}, false, fmt.Errorf("enqueue %s: %w", j.Model, err)
	}
	if waitCmd != nil {
		if err := checkWaitAOF(waitCmd); err != nil {
			return job.Job{}, false, fmt.Errorf("enqueue %s: %w", j.Model, err)
		}
	}
	code, rest, err := reply(script.Val())
	if err != nil {
		return job.Job{}, false, fmt.Errorf("enqueue %s: %w", j.Model, err)
	}
	ownIndex := setIdx.Val()
	// other is the live job that held this id before, if there is one.
	var other *stored
	if !ownIndex {
		other, err = b.indexHolder(ctx, idx, j)
		if err != nil {
			return job.Job{}, false, fmt.Errorf("enqueue %s: %w", j.Model, err)
		}
	}
	if code == "ok" && (other == nil || other.Model == j.Model) {
		if !ownIndex {
			// An orphaned index (its job expired, or was never stored): take it over.
			if err := b.rdb.Set(ctx, idx, j.Model, 0).Err(); err != nil {
				return job.Job{}, false, fmt.Errorf("enqueue %s: %w", j.Model, err)
			}
		}
		b.models.put(j.ID, j.Model)
		return j, false, nil
	}
	if code == "ok" {
		// The id is another model's live job's: take back the job just stored.
		if _, err := b.runScripts(ctx, []scriptCall{{scriptDiscard, ks[:len(mk.jobKeys(""))], []any{j.ID}}}); err != nil {
			return job.Job{}, false, fmt.Errorf("enqueue %s: discard the job under a taken id: %w", j.Model, err)
		}
		if j.IdempotencyKey != "" && other.Owner == j.Owner && other.IdempotencyKey == j.IdempotencyKey {
			// A resubmission that names its job id as well as its idempotency key.
			return other.Job, true, nil
		}
		return job.Job{}, false, fmt.Errorf("enqueue %s: job id %s is taken", j.Model, j.ID)
	}

	// Refused: take back the index and listing entries written for it, unless they are
	// another live job's.
	if code != "duplicate" && other == nil {
		pipe := b.rdb.Pipeline()
		pipe.ZRem(ctx, b.k.all(), j.ID)
		if j.Owner != "" {
			pipe.ZRem(ctx, b.k.owner(j.Owner), j.ID)
		}
		if ownIndex {
			pipe.Del(ctx, idx)
		}
		if _, err := pipe.Exec(ctx); err != nil {
			b.log.Warn("redis broker: clean up after a refused enqueue", "job", j.ID, "err", err)
		}
	}
	switch code {
	case "exists":
		id, _ := rest[0].(string)
		prev, err := b.getIn(ctx, j.Model, id)
		if err != nil {
			return job.Job{}, false, fmt.Errorf("enqueue %s: idempotency key %q: %w", j.Model, j.IdempotencyKey, err)
		}
		return prev.Job, true, nil
	case "full":
		return job.Job{}, false, &broker.QueueFullError{Model: j.Model, Cap: b.cfg.QueueCap}
	case "duplicate":
		return job.Job{}, false, fmt.Errorf("enqueue %s: job id %s is taken", j.Model, j.ID)
	}
	return job.Job{}, false, fmt.Errorf("enqueue %s: unexpected script reply %q", j.Model, code)
}

// indexHolder reads an index key that existed before j's enqueue and returns the live job it
// names, or nil when that job is gone (under j's model, the job just stored is not it: the
// script refuses an id that its model holds).
func (b *Broker) indexHolder(ctx context.Context, idx string, j job.Job) (*stored, error) {
	prev, err := b.rdb.Get(ctx, idx).Result()
	if errors.Is(err, redis.Nil) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	if prev == "" {
		return nil, nil
	}
	s, err := b.getIn(ctx, prev, j.ID)
	if errors.Is(err, broker.ErrNotFound) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	return &s, nil
}

// Get returns a job by id.
func (b *Broker) Get(ctx context.Context, id string) (job.Job, error) {
	if err := b.open(); err != nil {
		return job.Job{}, err
	}
	model, cached, err := b.cachedModelOf(ctx, id)
	if err != nil {
		return job.Job{}, fmt.Errorf("get %s: %w", id, err)
	}
	s, err := b.getIn(ctx, model, id)
	if cached && errors.Is(err, broker.ErrNotFound) {
		b.models.forget(id)
		if model, err = b.modelOf(ctx, id); err == nil {
			s, err = b.getIn(ctx, model, id)
		}
	}
	if err != nil {
		return job.Job{}, fmt.Errorf("get %s: %w", id, err)
	}
	return s.Job, nil
}

// getIn reads a job of a known model.
func (b *Broker) getIn(ctx context.Context, model, id string) (stored, error) {
	m, err := b.rdb.HGetAll(ctx, b.k.model(model).job(id)).Result()
	if err != nil {
		return stored{}, err
	}
	if len(m) == 0 {
		return stored{}, broker.ErrNotFound
	}
	return decodeJob(m)
}

// getMany reads jobs by id, in order, in two round trips. Missing jobs are left out; gone lists
// those whose index key is missing too. Only those are surely gone for good: the index is
// written before an enqueue and expires with its job, so an index without its job may be an
// enqueue in flight.
func (b *Broker) getMany(ctx context.Context, ids []string) (jobs []job.Job, gone []string, err error) {
	if len(ids) == 0 {
		return nil, nil, nil
	}
	pipe := b.rdb.Pipeline()
	idx := make([]*redis.StringCmd, len(ids))
	for i, id := range ids {
		idx[i] = pipe.Get(ctx, b.k.index(id))
	}
	if _, err := pipe.Exec(ctx); err != nil && !errors.Is(err, redis.Nil) {
		return nil, nil, err
	}
	pipe = b.rdb.Pipeline()
	hs := make([]*redis.MapStringStringCmd, len(ids))
	for i, id := range ids {
		if model, err := idx[i].Result(); err == nil {
			hs[i] = pipe.HGetAll(ctx, b.k.model(model).job(id))
		}
	}
	if pipe.Len() > 0 {
		if _, err := pipe.Exec(ctx); err != nil {
			return nil, nil, err
		}
	}
	for i, id := range ids {
		if hs[i] == nil {
			gone = append(gone, id)
			continue
		}
		if len(hs[i].Val()) == 0 {
			continue
		}
		s, err := decodeJob(hs[i].Val())
		if err != nil {
			return nil, nil, err
		}
		jobs = append(jobs, s.Job)
	}
	return jobs, gone, nil
}
