package redisbroker

import (
	"context"
	"strconv"
	"time"

	"github.com/redis/go-redis/v9"
)

// Maintenance timing. The loop only does bookkeeping that falls due with time — lapsed leases,
// retries whose backoff is over, deadlines — so its period bounds how late those happen; pickup
// of queued jobs never waits for it.
const (
	maintainEvery       = 100 * time.Millisecond
	pruneConsumersEvery = time.Minute
	consumerIdle        = 10 * time.Minute // a consumer idle this long with nothing pending is deleted
	sweepBatch          = 100              // most due jobs of one kind handled per model per sweep
	reaper              = "nv-reaper"      // the consumer XAUTOCLAIM claims lapsed entries to
	logErrorsEvery      = 10 * time.Second
)

// maintain runs the maintenance sweeps until ctx ends (Close).
func (b *Broker) maintain(ctx context.Context) {
	defer b.bg.Done()
	tick := time.NewTicker(maintainEvery)
	defer tick.Stop()
	var lastPrune, lastLog time.Time
	for {
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
		err := b.sweep(ctx)
		if err == nil && time.Since(lastPrune) >= pruneConsumersEvery {
			err = b.pruneConsumers(ctx)
			lastPrune = time.Now()
		}
		if err != nil && ctx.Err() == nil && time.Since(lastLog) >= logErrorsEvery {
			b.log.Warn("redis broker: maintenance", "err", err)
			lastLog = time.Now()
		}
	}
}

// sweep handles, for every model, what has fallen due: leases past their deadline (from the
// running ZSET) or idle past a lease (XAUTOCLAIM), retries past their backoff, and queued jobs
// past their deadline. Each job goes through its transition's script, which checks again that
// the transition still applies, so concurrent sweeps (every broker process runs one) and races
// with workers are harmless.
func (b *Broker) sweep(ctx context.Context) error {
	models, err := b.allModels(ctx)
	if err != nil || len(models) == 0 {
		return err
	}
	_, nowMS, nowNS := b.now()
	due := redis.ZRangeBy{Min: "-inf", Max: itoa(nowMS), Count: sweepBatch}
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
		for _, s := range mk.streams() {
			cs[i].claims = append(cs[i].claims, pipe.XAutoClaim(ctx, &redis.XAutoClaimArgs{
				Stream: s, Group: group, Consumer: reaper, MinIdle: b.cfg.Lease, Start: "0-0", Count: sweepBatch,
			}))
		}
	}
	// XAUTOCLAIM fails on a stream that does not exist yet; those errors are expected.
	_, _ = pipe.Exec(ctx)

	type outcome struct {
		id  string
		ttl int64 // > 0: the script may finish the job, whose index then expires after ttl
	}
	var calls []scriptCall
	var outs []outcome
	for i, m := range models {
		mk := b.k.model(m)
		for _, c := range []*redis.StringSliceCmd{cs[i].running, cs[i].sched, cs[i].deadlines} {
			if err := c.Err(); err != nil {
				return err
			}
		}
		for _, id := range cs[i].running.Val() {
			calls = append(calls, scriptCall{scriptReclaim, mk.jobKeys(id), []any{id, "", 0, nowMS, nowNS, b.deadTTL(), lapsedError}})
			outs = append(outs, outcome{id, b.deadTTL()})
		}
		for _, id := range cs[i].sched.Val() {
			calls = append(calls, scriptCall{scriptPromote, mk.jobKeys(id), []any{id, nowMS}})
			outs = append(outs, outcome{id, 0})
		}
		for _, id := range cs[i].deadlines.Val() {
			calls = append(calls, scriptCall{scriptExpire, mk.jobKeys(id), []any{id, nowMS, nowNS, b.ttl()}})
			outs = append(outs, outcome{id, b.ttl()})
		}
		for n, c := range cs[i].claims {
			msgs, _, err := c.Result()
			if err != nil {
				continue
			}
			for _, msg := range msgs {
				id, _ := msg.Values["job"].(string)
				calls = append(calls, scriptCall{scriptReclaim, mk.jobKeys(id), []any{id, msg.ID, n + 1, nowMS, nowNS, b.deadTTL(), lapsedError}})
				outs = append(outs, outcome{id, b.deadTTL()})
			}
		}
	}
	if len(calls) == 0 {
		return nil
	}
	cmds, err := b.runScripts(ctx, calls)
	for i, c := range cmds {
		if c == nil || c.Err() != nil {
			continue
		}
		if code, _, _ := reply(c.Val()); code == "dead" || code == "expired" {
			b.expireIndex(ctx, outs[i].id, outs[i].ttl)
		}
	}
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

func itoa(n int64) string { return strconv.FormatInt(n, 10) }
