package redisbroker

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/neovratz/neovratz/internal/broker"
)

// The worker registry: each worker's WorkerInfo as JSON, and a ZSET of worker ids by last
// heartbeat (ms, by Config.Now). A worker whose heartbeat is older than Config.WorkerTTL is
// gone: Workers leaves it out and forgets it, HeartbeatWorker refuses it.

// RegisterWorker adds or replaces a worker; it counts as a heartbeat.
func (b *Broker) RegisterWorker(ctx context.Context, w broker.WorkerInfo) error {
	if err := b.open(); err != nil {
		return err
	}
	if w.ID == "" {
		return fmt.Errorf("register worker: the worker has no id")
	}
	now, nowMS, _ := b.now()
	if w.StartedAt.IsZero() {
		w.StartedAt = now.UTC()
	}
	w.LastHeartbeat = now.UTC()
	data, err := json.Marshal(w)
	if err != nil {
		return fmt.Errorf("register worker %s: %w", w.ID, err)
	}
	err = scriptRegisterWorker.Run(ctx, b.rdb, []string{b.k.workers(), b.k.worker(w.ID)}, w.ID, nowMS, data).Err()
	if err != nil {
		return fmt.Errorf("register worker %s: %w", w.ID, err)
	}
	return nil
}

// HeartbeatWorker marks a worker alive, or answers ErrNotFound when the registry forgot it.
func (b *Broker) HeartbeatWorker(ctx context.Context, id string) error {
	if err := b.open(); err != nil {
		return err
	}
	_, nowMS, _ := b.now()
	ok, err := scriptHeartbeatWorker.Run(ctx, b.rdb, []string{b.k.workers(), b.k.worker(id)},
		id, nowMS, ms(b.cfg.WorkerTTL)).Int()
	if err != nil {
		return fmt.Errorf("heartbeat worker %s: %w", id, err)
	}
	if ok == 0 {
		return fmt.Errorf("heartbeat worker %s: %w", id, broker.ErrNotFound)
	}
	return nil
}

// DeregisterWorker removes a worker from the registry.
func (b *Broker) DeregisterWorker(ctx context.Context, id string) error {
	if err := b.open(); err != nil {
		return err
	}
	pipe := b.rdb.TxPipeline()
	pipe.ZRem(ctx, b.k.workers(), id)
	pipe.Del(ctx, b.k.worker(id))
	if _, err := pipe.Exec(ctx); err != nil {
		return fmt.Errorf("deregister worker %s: %w", id, err)
	}
	return nil
}

// Workers lists live workers sorted by id, and forgets the dead ones.
func (b *Broker) Workers(ctx context.Context) ([]broker.WorkerInfo, error) {
	if err := b.open(); err != nil {
		return nil, err
	}
	_, nowMS, _ := b.now()
	cutoff := nowMS - ms(b.cfg.WorkerTTL)
	if err := b.forgetDeadWorkers(ctx, cutoff); err != nil {
		return nil, fmt.Errorf("workers: %w", err)
	}
	zs, err := b.rdb.ZRangeArgsWithScores(ctx, redis.ZRangeArgs{
		Key: b.k.workers(), Start: "(" + strconv.FormatInt(cutoff, 10), Stop: "+inf", ByScore: true,
	}).Result()
	if err != nil {
		return nil, fmt.Errorf("workers: %w", err)
	}
	if len(zs) == 0 {
		return nil, nil
	}
	keys := make([]string, len(zs))
	for i, z := range zs {
		keys[i] = b.k.worker(z.Member.(string))
	}
	// One MGET: every worker key shares the {w} tag.
	vals, err := b.rdb.MGet(ctx, keys...).Result()
	if err != nil {
		return nil, fmt.Errorf("workers: %w", err)
	}
	var out []broker.WorkerInfo
	for i, v := range vals {
		s, ok := v.(string)
		if !ok {
			continue // deregistered meanwhile
		}
		var w broker.WorkerInfo
		if err := json.Unmarshal([]byte(s), &w); err != nil {
			return nil, fmt.Errorf("workers: %s: %w", zs[i].Member, err)
		}
		w.LastHeartbeat = time.UnixMilli(int64(zs[i].Score)).UTC()
		out = append(out, w)
	}
	slices.SortFunc(out, func(x, y broker.WorkerInfo) int { return strings.Compare(x.ID, y.ID) })
	return out, nil
}

// forgetDeadWorkers removes workers whose last heartbeat is at or before cutoff (ms).
func (b *Broker) forgetDeadWorkers(ctx context.Context, cutoff int64) error {
	dead, err := b.rdb.ZRangeArgs(ctx, redis.ZRangeArgs{
		Key: b.k.workers(), Start: "-inf", Stop: strconv.FormatInt(cutoff, 10), ByScore: true,
	}).Result()
	if err != nil {
		return err
	}
	for _, id := range dead {
		// The script checks again, so a worker that came back just now stays.
		if err := scriptForgetWorker.Run(ctx, b.rdb, []string{b.k.workers(), b.k.worker(id)}, id, cutoff).Err(); err != nil {
			return err
		}
	}
	return nil
}
