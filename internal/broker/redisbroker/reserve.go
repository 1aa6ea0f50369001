package redisbroker

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/neovratz/neovratz/internal/broker"
)

// delivery is a stream entry XREADGROUP handed to this process, not yet marked running.
type delivery struct {
	model string
	num   int // stream number, 1..streamsPerModel
	entry string
	jobID string
}

// maxReserve caps n in one Reserve call.
const maxReserve = 100

// Reserve hands out up to n (at most maxReserve) jobs of models. It first takes what is queued
// without blocking, best first across the models; when nothing is, it blocks in XREADGROUP over
// every stream of the models until an entry arrives, then fills up to n again without blocking.
func (b *Broker) Reserve(ctx context.Context, workerID string, models []string, n int) ([]*broker.Lease, error) {
	if err := b.open(); err != nil {
		return nil, err
	}
	if workerID == "" || len(models) == 0 {
		return nil, fmt.Errorf("reserve %v: a worker id and at least one model are required", models)
	}
	n = min(max(n, 1), maxReserve)
	models = slices.Compact(slices.Sorted(slices.Values(models)))
	retried := false
	for {
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		if err := b.open(); err != nil {
			return nil, err
		}
		leases, err := b.reserveOnce(ctx, workerID, models, n)
		if err != nil && !retried && strings.Contains(err.Error(), "NOGROUP") {
			// The streams were deleted behind our back (a flushed database): create them again.
			b.groups.Clear()
			retried = true
			continue
		}
		if len(leases) > 0 {
			if err != nil {
				// The jobs are the caller's now; what failed after them can wait.
				b.log.Warn("redis broker: reserve", "models", models, "err", err)
			}
			return leases, nil
		}
		if err != nil && b.closed.Load() {
			return nil, broker.ErrClosed // Close ended the blocking read
		}
		if err != nil {
			return nil, fmt.Errorf("reserve %v: %w", models, err)
		}
	}
}

// reserveOnce takes what is queued or, if nothing is, waits one blocking slice. When the last
// call for the same worker and models found their streams drained, it skips the look at what
// is queued (a peek script over every stream) and goes straight to the blocking read, which
// answers at once if entries arrived meanwhile: a worker that keeps up with its queue then
// costs the broker one read and one mark per job.
func (b *Broker) reserveOnce(ctx context.Context, workerID string, models []string, n int) ([]*broker.Lease, error) {
	if err := b.ensureGroups(ctx, models); err != nil {
		return nil, err
	}
	key := workerID + "\x00" + strings.Join(models, "\x00")
	if !b.drained.has(key) {
		leases, err := b.take(ctx, workerID, models, n)
		if err != nil || len(leases) > 0 {
			return leases, err
		}
	}
	got, drained, err := b.block(ctx, workerID, models, n)
	if err != nil {
		b.drained.set(key, false)
		return nil, err
	}
	b.drained.set(key, drained)
	if len(got) == 0 {
		return nil, nil
	}
	if ctx.Err() != nil {
		// The caller gave up while the entry was on its way: put it back for someone else.
		b.giveBack(context.WithoutCancel(ctx), got)
		return nil, ctx.Err()
	}
	leases := b.markRunning(ctx, workerID, got)
	if len(leases) > n {
		// A blocked read can return entries from each of several streams; got is in priority
		// and age order, so the surplus is the least urgent.
		for _, l := range leases[n:] {
			if err := b.Release(ctx, l); err != nil {
				b.log.Warn("redis broker: hand back a surplus reservation", "job", l.Job.ID, "err", err)
			}
		}
		leases = leases[:n]
	}
	if len(leases) > 0 && len(leases) < n && !drained {
		more, err := b.take(ctx, workerID, models, n-len(leases))
		if err != nil {
			b.log.Warn("redis broker: fill a reservation", "err", err)
		}
		leases = append(leases, more...)
	}
	return leases, nil
}

// drainedSize bounds the reservers a drainedSet remembers; past it the set starts over (which
// costs each reserver one peek).
const drainedSize = 4096

// drainedSet remembers which reservers (a worker and its models) found their streams drained by
// their last blocking read.
type drainedSet struct {
	mu sync.Mutex
	m  map[string]struct{}
}

func (d *drainedSet) has(key string) bool {
	d.mu.Lock()
	defer d.mu.Unlock()
	_, ok := d.m[key]
	return ok
}

func (d *drainedSet) set(key string, drained bool) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if !drained {
		delete(d.m, key)
		return
	}
	if d.m == nil || len(d.m) >= drainedSize {
		d.m = make(map[string]struct{})
	}
	d.m[key] = struct{}{}
}

// ensureGroups creates the queue streams of models with their consumer group, once per process.
func (b *Broker) ensureGroups(ctx context.Context, models []string) error {
	var todo []string
	for _, m := range models {
		for _, s := range b.k.model(m).streams() {
			if _, ok := b.groups.Load(s); !ok {
				todo = append(todo, s)
			}
		}
	}
	if len(todo) == 0 {
		return nil
	}
	pipe := b.rdb.Pipeline()
	cmds := make([]*redis.StatusCmd, len(todo))
	for i, s := range todo {
		cmds[i] = pipe.XGroupCreateMkStream(ctx, s, group, "0")
	}
	_, _ = pipe.Exec(ctx)
	for i, c := range cmds {
		if err := c.Err(); err != nil && !strings.HasPrefix(err.Error(), "BUSYGROUP") {
			return fmt.Errorf("create consumer group: %w", err)
		}
		b.groups.Store(todo[i], struct{}{})
	}
	return nil
}

// candidate is an entry that a stream would hand out next.
type candidate struct {
	model string
	num   int
	id    streamID
}

// take hands out up to n queued jobs without blocking.
func (b *Broker) take(ctx context.Context, workerID string, models []string, n int) ([]*broker.Lease, error) {
	if len(models) == 1 {
		return b.takeOne(ctx, workerID, models[0], n)
	}
	var out []*broker.Lease
	// A few rounds at most: a round comes back short only when another worker took the same
	// entries or they belonged to jobs canceled meanwhile, and then the blocking read (which
	// returns at once when entries wait) takes over.
	for round := 0; len(out) < n && round < 4; round++ {
		need := n - len(out)
		cands, err := b.peek(ctx, models, need)
		if err != nil {
			return out, err
		}
		if len(cands) == 0 {
			break
		}
		// Priority first (the stream number orders priority, then front before main), then age.
		slices.SortFunc(cands, func(x, y candidate) int {
			return cmp.Or(cmp.Compare(x.num, y.num), x.id.compare(y.id))
		})
		cands = cands[:min(len(cands), need)]
		// The chosen entries are each stream's first ones, so read them per stream in one go.
		type streamRef struct {
			model string
			num   int
		}
		counts := map[streamRef]int64{}
		var order []streamRef
		for _, c := range cands {
			r := streamRef{c.model, c.num}
			if counts[r] == 0 {
				order = append(order, r)
			}
			counts[r]++
		}
		pipe := b.rdb.Pipeline()
		cmds := make([]*redis.XStreamSliceCmd, len(order))
		for i, r := range order {
			cmds[i] = pipe.XReadGroup(ctx, &redis.XReadGroupArgs{
				Group:    group,
				Consumer: workerID,
				Streams:  []string{b.k.model(r.model).stream(r.num), ">"},
				Count:    counts[r],
				Block:    -1,
			})
		}
		_, err = pipe.Exec(ctx)
		if errors.Is(err, redis.Nil) {
			err = nil // a stream whose entries someone else took first
		}
		// Mark what was delivered even if a read failed, rather than leave it pending.
		var got []delivery
		for i, r := range order {
			got = append(got, b.deliveries(cmds[i].Val(), r.model, r.num)...)
		}
		out = append(out, b.markRunning(ctx, workerID, got)...)
		if err != nil {
			return out, err
		}
	}
	return out, nil
}

// takeOne is take for one model, in one round trip: the reserve script reads the model's
// streams in priority order and marks what it delivers running. (Across several models the
// choice needs a look at every model's streams first, which take's peek does.)
func (b *Broker) takeOne(ctx context.Context, workerID, model string, n int) ([]*broker.Lease, error) {
	_, nowMS, nowNS := b.now()
	cmds, err := b.runScripts(ctx, []scriptCall{{scriptReserve, b.k.model(model).jobKeys(""),
		[]any{workerID, n, nowMS, nowNS, ms(b.cfg.Lease), b.ttl()}}})
	if err != nil {
		return nil, err
	}
	code, rest, err := reply(cmds[0].Val())
	if err != nil {
		return nil, err
	}
	if code != "ok" || len(rest) != 2 {
		return nil, fmt.Errorf("unexpected reserve reply %q", code)
	}
	got, _ := rest[0].([]any)
	expired, _ := rest[1].([]any)
	for _, e := range expired {
		pair, _ := e.([]any)
		if len(pair) == 2 {
			id, _ := pair[0].(string)
			owner, _ := pair[1].(string)
			b.finished(ctx, id, owner, b.ttl())
		}
	}
	out := make([]*broker.Lease, 0, len(got))
	for _, g := range got {
		pair, _ := g.([]any)
		if len(pair) != 2 {
			continue
		}
		entry, _ := pair[0].(string)
		s, err := decodeFlat(pair[1])
		if err != nil {
			// Marked running but unreadable: its lease lapses and it is handed out again.
			b.log.Warn("redis broker: reserve", "entry", entry, "err", err)
			continue
		}
		b.models.put(s.Job.ID, s.Job.Model)
		out = append(out, &broker.Lease{Job: s.Job, WorkerID: workerID, Attempt: s.Attempts, Until: s.leaseUntil, Token: entry})
	}
	return out, nil
}

// peek asks each model which entries its streams would hand out next, up to n per stream.
func (b *Broker) peek(ctx context.Context, models []string, n int) ([]candidate, error) {
	calls := make([]scriptCall, len(models))
	for i, m := range models {
		calls[i] = scriptCall{s: scriptPeek, keys: b.k.model(m).streams(), args: []any{n}}
	}
	cmds, err := b.runScripts(ctx, calls)
	if err != nil {
		return nil, err
	}
	var out []candidate
	for i, m := range models {
		streams, _ := cmds[i].Val().([]any)
		for s, v := range streams {
			ids, _ := v.([]any)
			for _, id := range ids {
				str, _ := id.(string)
				sid, err := parseStreamID(str)
				if err != nil {
					return nil, err
				}
				out = append(out, candidate{model: m, num: s + 1, id: sid})
			}
		}
	}
	return out, nil
}

// block waits up to one blocking slice (less if ctx ends sooner) for entries on any stream of
// models, up to n from each, and returns them in priority and age order; drained tells that no
// stream had more to give. Its command runs on a context that is not canceled, so a slice
// always ends cleanly with Redis's own timeout rather than a torn connection; the slice is what
// bounds the wait.
func (b *Broker) block(ctx context.Context, workerID string, models []string, n int) (got []delivery, drained bool, err error) {
	d := blockSlice
	if dl, ok := ctx.Deadline(); ok {
		d = min(d, time.Until(dl))
	}
	d = max(d, time.Millisecond) // BLOCK 0 would mean forever
	type ref struct {
		model string
		num   int
	}
	byKey := map[string]ref{}
	var streams []string
	for _, m := range models {
		for i, s := range b.k.model(m).streams() {
			byKey[s] = ref{m, i + 1}
			streams = append(streams, s)
		}
	}
	ns := len(streams)
	for range ns {
		streams = append(streams, ">")
	}
	res, err := b.blk.XReadGroup(context.WithoutCancel(ctx), &redis.XReadGroupArgs{
		Group:    group,
		Consumer: workerID,
		Streams:  streams,
		Count:    int64(n),
		Block:    d,
	}).Result()
	if errors.Is(err, redis.Nil) {
		return nil, true, nil
	}
	if err != nil {
		return nil, false, err
	}
	drained = true
	for _, s := range res {
		r := byKey[s.Stream]
		got = append(got, b.deliveries([]redis.XStream{s}, r.model, r.num)...)
		if len(s.Messages) >= n {
			drained = false
		}
	}
	slices.SortStableFunc(got, func(x, y delivery) int {
		if c := cmp.Compare(x.num, y.num); c != 0 {
			return c
		}
		xi, _ := parseStreamID(x.entry)
		yi, _ := parseStreamID(y.entry)
		return xi.compare(yi)
	})
	return got, drained, nil
}

// deliveries turns XREADGROUP's answer for one stream into deliveries.
func (b *Broker) deliveries(res []redis.XStream, model string, num int) []delivery {
	var out []delivery
	for _, s := range res {
		for _, msg := range s.Messages {
			id, _ := msg.Values["job"].(string)
			out = append(out, delivery{model: model, num: num, entry: msg.ID, jobID: id})
		}
	}
	return out
}

// markRunning puts delivered entries' jobs under lease, in one pipeline. Entries of jobs that
// are gone, canceled or expired are dropped. A delivery whose script failed stays pending in
// the stream and comes back through XAUTOCLAIM once it has been idle for a lease.
func (b *Broker) markRunning(ctx context.Context, workerID string, got []delivery) []*broker.Lease {
	if len(got) == 0 {
		return nil
	}
	_, nowMS, nowNS := b.now()
	calls := make([]scriptCall, len(got))
	for i, d := range got {
		calls[i] = scriptCall{s: scriptMarkRunning, keys: b.k.model(d.model).jobKeys(d.jobID),
			args: []any{d.entry, d.num, workerID, nowMS, nowNS, ms(b.cfg.Lease), b.ttl()}}
	}
	cmds, err := b.runScripts(ctx, calls)
	if err != nil {
		b.log.Warn("redis broker: mark reserved jobs running", "err", err)
	}
	var out []*broker.Lease
	for i, c := range cmds {
		if c == nil || c.Err() != nil {
			continue
		}
		code, rest, err := reply(c.Val())
		if err != nil {
			b.log.Warn("redis broker: mark running", "job", got[i].jobID, "err", err)
			continue
		}
		switch code {
		case "ok":
			s, err := decodeFlat(rest[0])
			if err != nil {
				b.log.Warn("redis broker: mark running", "job", got[i].jobID, "err", err)
				continue
			}
			b.models.put(s.Job.ID, s.Job.Model)
			out = append(out, &broker.Lease{Job: s.Job, WorkerID: workerID, Attempt: s.Attempts, Until: s.leaseUntil, Token: got[i].entry})
		case "expired":
			b.finishedReply(ctx, got[i].jobID, c.Val())
		}
	}
	return out
}

// giveBack returns delivered entries that nobody will mark running to the front of their queue.
func (b *Broker) giveBack(ctx context.Context, got []delivery) {
	_, nowMS, nowNS := b.now()
	calls := make([]scriptCall, len(got))
	for i, d := range got {
		calls[i] = scriptCall{s: scriptReclaim, keys: b.k.model(d.model).jobKeys(d.jobID),
			args: []any{d.jobID, d.entry, d.num, nowMS, nowNS, b.deadTTL(), lapsedError}}
	}
	if _, err := b.runScripts(ctx, calls); err != nil {
		b.log.Warn("redis broker: hand back deliveries", "err", err)
	}
}

// streamID is a stream entry id, ordered as Redis orders them.
type streamID struct{ ms, seq uint64 }

func parseStreamID(s string) (streamID, error) {
	a, c, ok := strings.Cut(s, "-")
	msPart, err1 := strconv.ParseUint(a, 10, 64)
	seq, err2 := strconv.ParseUint(c, 10, 64)
	if !ok || err1 != nil || err2 != nil {
		return streamID{}, fmt.Errorf("bad stream id %q", s)
	}
	return streamID{msPart, seq}, nil
}

func (x streamID) compare(y streamID) int {
	return cmp.Or(cmp.Compare(x.ms, y.ms), cmp.Compare(x.seq, y.seq))
}
