package redisbroker

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"strconv"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"
)

// Maintenance timing. The loop only does bookkeeping that falls due with time — lapsed leases,
// retries whose backoff is over, deadlines, forgotten jobs — so its period bounds how late those
// happen; pickup of queued jobs never waits for it.
const (
	maintainEvery       = 100 * time.Millisecond
	lockFor             = time.Second // a dead lock holder is replaced after this long
	maxClaimEvery       = 5 * time.Second
	pruneConsumersEvery = time.Minute
	consumerIdle        = 10 * time.Minute // a consumer idle this long with nothing pending is deleted
	sweepBatch          = 100              // most due items of one kind handled per model per sweep
	reaper              = "nv-reaper"      // the consumer XAUTOCLAIM claims lapsed entries to
	logErrorsEvery      = 10 * time.Second
)

// maintain runs the maintenance sweeps until ctx ends (Close). Every broker process runs this
// loop, but only the holder of the maintenance lock sweeps, so the load on Redis does not grow
// with the number of API and worker processes; when the holder dies its lock lapses and another
// process takes over. (Two sweepers at once would be harmless: every step is a script that checks
// again that it still applies.)
func (b *Broker) maintain(ctx context.Context) {
	defer b.bg.Done()
	var raw [8]byte
	_, _ = rand.Read(raw[:])
	holder := hex.EncodeToString(raw[:])
	defer func() {
		// Hand the lock over at once rather than after it lapses.
		uctx, cancel := context.WithTimeout(context.Background(), time.Second)
		defer cancel()
		_ = scriptUnlock.Run(uctx, b.rdb, []string{b.k.lock()}, holder).Err()
	}()

	// XAUTOCLAIM is the backstop for leases (the running ZSET finds lapses first), so it runs
	// less often when leases are long.
	claimEvery := min(max(b.cfg.Lease/4, maintainEvery), maxClaimEvery)
	tick := time.NewTicker(maintainEvery)
	defer tick.Stop()
	var lastClaim, lastPrune, lastLog time.Time
	for {
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
		err := b.maintainOnce(ctx, holder, &lastClaim, &lastPrune, claimEvery)
		if err != nil && ctx.Err() == nil && time.Since(lastLog) >= logErrorsEvery {
			b.log.Warn("redis broker: maintenance", "err", err)
			lastLog = time.Now()
		}
	}
}

func (b *Broker) maintainOnce(ctx context.Context, holder string, lastClaim, lastPrune *time.Time, claimEvery time.Duration) error {
	held, err := scriptLock.Run(ctx, b.rdb, []string{b.k.lock()}, holder, ms(lockFor)).Int()
	if err != nil || held == 0 {
		return err
	}
	claim := time.Since(*lastClaim) >= claimEvery
	if claim {
		*lastClaim = time.Now()
	}
	if err := b.sweep(ctx, claim); err != nil {
		return err
	}
	if err := b.forgetFinished(ctx); err != nil {
		return err
	}
	if time.Since(*lastPrune) >= pruneConsumersEvery {
		*lastPrune = time.Now()
		return b.pruneConsumers(ctx)
	}
	return nil
}

// sweep handles, for every model, what has fallen due: leases past their deadline (from the
// running ZSET) or, when claim is set, idle past a lease (XAUTOCLAIM), retries past their
// backoff, and queued jobs past their deadline. Each job goes through its transition's script,
// which checks again that the transition still applies, so races with workers are harmless.
func (b *Broker) sweep(ctx context.Context, claim bool) error {
	models, err := b.allModels(ctx)
	if err != nil || len(models) == 0 {
		return err
	}
	_, nowMS, nowNS := b.now()
	due := redis.ZRangeBy{Min: "-inf", Max: strconv.FormatInt(nowMS, 10), Count: sweepBatch}
	type modelCmds struct {
		running, sched, deadlines *redis.StringSliceCmd
		claims                    []*redis.XAutoClaimCmd
	}
	pipe := b.rdb.Pipeline()
	cs := make([]modelCmds, len(models))
	for i, m := range models {
		mk := b.k.model(m)
		cs[i].running = pipe.ZRangeByScore(ctx, mk.running(), &due)
		cs[i].sched = pipe.ZRangeByScore(ctx, mk.sched(), &due)
		cs[i].deadlines = pipe.ZRangeByScore(ctx, mk.deadlines(), &due)
		if claim {
			for _, s := range mk.streams() {
				cs[i].claims = append(cs[i].claims, pipe.XAutoClaim(ctx, &redis.XAutoClaimArgs{
					Stream: s, Group: group, Consumer: reaper, MinIdle: b.cfg.Lease, Start: "0-0", Count: sweepBatch,
				}))
			}
		}
	}
	// XAUTOCLAIM fails on a stream that does not exist yet; those errors are expected, and the
	// others are checked command by command below.
	_, _ = pipe.Exec(ctx)

	var calls []scriptCall
	var ids []string
	for i, m := range models {
		mk := b.k.model(m)
		for _, c := range []*redis.StringSliceCmd{cs[i].running, cs[i].sched, cs[i].deadlines} {
			if err := c.Err(); err != nil {
				return err
			}
		}
		for _, id := range cs[i].running.Val() {
			calls = append(calls, scriptCall{scriptReclaim, mk.jobKeys(id), []any{id, "", 0, nowMS, nowNS, b.deadTTL(), lapsedError}})
			ids = append(ids, id)
		}
		for _, id := range cs[i].sched.Val() {
			calls = append(calls, scriptCall{scriptPromote, mk.jobKeys(id), []any{id, nowMS}})
			ids = append(ids, id)
		}
		for _, id := range cs[i].deadlines.Val() {
			calls = append(calls, scriptCall{scriptExpire, mk.jobKeys(id), []any{id, nowMS, nowNS, b.ttl()}})
			ids = append(ids, id)
		}
		for n, c := range cs[i].claims {
			msgs, _, err := c.Result()
			if err != nil {
				continue
			}
			for _, msg := range msgs {
				id, _ := msg.Values["job"].(string)
				calls = append(calls, scriptCall{scriptReclaim, mk.jobKeys(id), []any{id, msg.ID, n + 1, nowMS, nowNS, b.deadTTL(), lapsedError}})
				ids = append(ids, id)
			}
		}
	}
	if len(calls) == 0 {
		return nil
	}
	cmds, err := b.runScripts(ctx, calls)
	for i, c := range cmds {
		if c != nil && c.Err() == nil {
			b.finishedReply(ctx, ids[i], c.Val())
		}
	}
	return err
}

// forgetFinished drops jobs whose retention is over from the listings.
func (b *Broker) forgetFinished(ctx context.Context) error {
	_, nowMS, _ := b.now()
	members, err := b.rdb.ZRangeByScore(ctx, b.k.forget(), &redis.ZRangeBy{
		Min: "-inf", Max: strconv.FormatInt(nowMS, 10), Count: sweepBatch,
	}).Result()
	if err != nil || len(members) == 0 {
		return err
	}
	pipe := b.rdb.Pipeline()
	for _, m := range members {
		id, owner, _ := strings.Cut(m, " ")
		pipe.ZRem(ctx, b.k.all(), id)
		if owner != "" {
			pipe.ZRem(ctx, b.k.owner(owner), id)
		}
		pipe.ZRem(ctx, b.k.forget(), m)
	}
	_, err = pipe.Exec(ctx)
	return err
}

// pruneConsumers deletes consumers that hold no pending entries and have long been idle, so
// the consumers of workers that came and went do not pile up.
func (b *Broker) pruneConsumers(ctx context.Context) error {
	models, err := b.allModels(ctx)
	if err != nil {
		return err
	}
	var calls []scriptCall
	for _, m := range models {
		for _, s := range b.k.model(m).streams() {
			calls = append(calls, scriptCall{scriptPruneConsumers, []string{s}, []any{ms(consumerIdle)}})
		}
	}
	_, err = b.runScripts(ctx, calls)
	return err
}
