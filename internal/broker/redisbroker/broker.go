package redisbroker

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/neovratz/neovratz/internal/broker"
	"github.com/neovratz/neovratz/internal/job"
)

// DeadLetterRetention is how many times Config.Retention a dead-lettered job is kept.
const DeadLetterRetention = 7

// blockingPoolSize is the least number of connections of the pool for blocking reads.
const blockingPoolSize = 100

// blockSlice bounds one blocking read, so a Reserve or Events wait notices a canceled context
// (or Close) within this long: go-redis does not interrupt a blocked read when its context ends.
const blockSlice = 500 * time.Millisecond

// Options configures a Broker.
type Options struct {
	// Config holds the contract's tunables; zero values take their defaults.
	Config broker.Config
	// Prefix starts every key; default "nv". It must not contain '{' or '}', which would break
	// the hash tags.
	Prefix string
	// Durable acknowledges an enqueue only once Redis has it on disk (see the package doc).
	Durable bool
	// Logger receives warnings about the server's configuration and maintenance errors;
	// default: discard.
	Logger *slog.Logger
}

// Broker is the Redis broker. It is safe for concurrent use.
type Broker struct {
	rdb redis.UniversalClient
	// blk runs the blocking reads (Reserve, Events) on a pool of its own, cloned from rdb's
	// options, so that connections held by waiting readers never starve the short commands —
	// lease extensions above all — of connections. ownBlk: Close closes it.
	blk     redis.UniversalClient
	ownBlk  bool
	cfg     broker.Config
	k       keys
	log     *slog.Logger
	waitAOF bool // durable mode on a server with WAITAOF

	groups  sync.Map // stream key → struct{}: consumer group known to exist
	models  modelCache
	drained drainedSet // reservers whose last blocking read left their streams empty

	closed atomic.Bool
	stop   context.CancelFunc // ends the maintenance loop
	bg     sync.WaitGroup
}

var _ broker.Broker = (*Broker)(nil)

// New checks the server, loads the scripts and starts the maintenance loop. Close stops the
// loop; it does not close rdb, which stays the caller's.
func New(ctx context.Context, rdb redis.UniversalClient, opts Options) (*Broker, error) {
	if opts.Prefix == "" {
		opts.Prefix = "nv"
	}
	if strings.ContainsAny(opts.Prefix, "{}") {
		return nil, fmt.Errorf("redis broker: prefix %q must not contain '{' or '}'", opts.Prefix)
	}
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	b := &Broker{
		rdb: rdb,
		cfg: opts.Config.WithDefaults(),
		k:   keys{prefix: opts.Prefix},
		log: opts.Logger,
	}
	if err := rdb.Ping(ctx).Err(); err != nil {
		return nil, fmt.Errorf("redis broker: ping: %w", err)
	}
	waitAOF, err := checkServer(ctx, rdb, opts.Durable, b.log)
	if err != nil {
		return nil, fmt.Errorf("redis broker: %w", err)
	}
	b.waitAOF = waitAOF
	b.blk, b.ownBlk = blockingClient(rdb)
	for _, s := range allScripts {
		if err := s.Load(ctx, rdb).Err(); err != nil {
			return nil, fmt.Errorf("redis broker: load scripts: %w", err)
		}
	}
	mctx, stop := context.WithCancel(context.Background())
	b.stop = stop
	b.bg.Add(1)
	go b.maintain(mctx)
	return b, nil
}

// Close stops the maintenance loop and makes further calls fail with broker.ErrClosed; calls
// blocked in Reserve or Events return ErrClosed at once (their pool is closed).
func (b *Broker) Close() error {
	if b.closed.Swap(true) {
		return nil
	}
	b.stop()
	b.bg.Wait()
	if b.ownBlk {
		return b.blk.Close()
	}
	return nil
}

// blockingClient returns a client with its own connection pool for blocking reads, cloned from
// rdb's options; for a client type it cannot clone, rdb itself (own = false).
func blockingClient(rdb redis.UniversalClient) (c redis.UniversalClient, own bool) {
	switch r := rdb.(type) {
	case *redis.Client:
		o := *r.Options()
		o.PoolSize = max(o.PoolSize, blockingPoolSize)
		return redis.NewClient(&o), true
	case *redis.ClusterClient:
		o := *r.Options()
		o.PoolSize = max(o.PoolSize, blockingPoolSize)
		return redis.NewClusterClient(&o), true
	}
	return rdb, false
}

// Ping reports whether Redis answers.
func (b *Broker) Ping(ctx context.Context) error {
	if err := b.open(); err != nil {
		return err
	}
	if err := b.rdb.Ping(ctx).Err(); err != nil {
		return fmt.Errorf("ping redis: %w", err)
	}
	return nil
}

func (b *Broker) open() error {
	if b.closed.Load() {
		return broker.ErrClosed
	}
	return nil
}

// now returns the broker clock's time in the two forms the scripts take.
func (b *Broker) now() (t time.Time, ms int64, ns string) {
	t = b.cfg.Now()
	return t, t.UnixMilli(), nanos(t)
}

func ms(d time.Duration) int64 { return d.Milliseconds() }

// ttl is how long a finished job is kept, in ms; deadTTL how long a dead-lettered one is.
func (b *Broker) ttl() int64     { return max(1, ms(b.cfg.Retention)) }
func (b *Broker) deadTTL() int64 { return max(1, ms(b.cfg.Retention*DeadLetterRetention)) }

// modelOf finds a job's model through its index key, and remembers it.
func (b *Broker) modelOf(ctx context.Context, id string) (string, error) {
	m, err := b.rdb.Get(ctx, b.k.index(id)).Result()
	if errors.Is(err, redis.Nil) {
		return "", broker.ErrNotFound
	}
	if err == nil {
		b.models.put(id, m)
	}
	return m, err
}

// cachedModelOf is modelOf answered from the cache when it can; cached tells which. A caller
// that then finds no job under a cached model forgets the entry and asks modelOf.
func (b *Broker) cachedModelOf(ctx context.Context, id string) (model string, cached bool, err error) {
	if m, ok := b.models.get(id); ok {
		return m, true, nil
	}
	m, err := b.modelOf(ctx, id)
	return m, false, err
}

// finished does the bookkeeping outside the model's slot (so the scripts cannot) for a job that
// has just finished and expires after ttl ms: its index key gets the same lifetime, and it is
// marked to leave the listings then. If this is lost, Get still answers ErrNotFound for a job
// whose hash expired, and List drops what it cannot find.
func (b *Broker) finished(ctx context.Context, id, owner string, ttl int64) {
	_, nowMS, _ := b.now()
	pipe := b.rdb.Pipeline()
	b.finishedCmds(ctx, pipe, id, owner, ttl, nowMS)
	if _, err := pipe.Exec(ctx); err != nil {
		b.log.Warn("redis broker: schedule a finished job's cleanup", "job", id, "err", err)
	}
}

// finishedCmds queues finished's commands on pipe.
func (b *Broker) finishedCmds(ctx context.Context, pipe redis.Pipeliner, id, owner string, ttl, nowMS int64) {
	pipe.PExpire(ctx, b.k.index(id), time.Duration(ttl)*time.Millisecond)
	pipe.ZAdd(ctx, b.k.forget(), redis.Z{Score: float64(nowMS + ttl), Member: forgetMember(id, owner)})
}

// unfinishedIfLive sets right the bookkeeping that Complete sent along with a completion that
// the job refused (lease lost): for a job that is not finished it is undone, for one that is it
// is done again with the lifetime that its status gives it (a dead-lettered job lives longer).
// The status is read again after an undo, so that a job finished by someone else in between
// ends with its bookkeeping done.
func (b *Broker) unfinishedIfLive(ctx context.Context, model, id, owner string) {
	key := b.k.model(model).job(id)
	for try := 0; try < 2; try++ {
		st, err := b.rdb.HGet(ctx, key, "status").Result()
		if errors.Is(err, redis.Nil) {
			return // gone: nothing to keep
		}
		if err != nil {
			b.log.Warn("redis broker: keep a job whose completion was refused", "job", id, "err", err)
			return
		}
		switch job.Status(st) {
		case job.StatusFailed:
			b.finished(ctx, id, owner, b.deadTTL())
			return
		case job.StatusSucceeded, job.StatusCanceled, job.StatusExpired:
			b.finished(ctx, id, owner, b.ttl())
			return
		}
		if try == 0 {
			b.unfinished(ctx, id, owner)
		}
	}
}

// unfinished undoes finished for a job that is queued again (Requeue).
func (b *Broker) unfinished(ctx context.Context, id, owner string) {
	pipe := b.rdb.Pipeline()
	pipe.Persist(ctx, b.k.index(id))
	pipe.ZRem(ctx, b.k.forget(), forgetMember(id, owner))
	if _, err := pipe.Exec(ctx); err != nil {
		b.log.Warn("redis broker: keep a requeued job", "job", id, "err", err)
	}
}

// finishedReply handles a script reply that may have finished a job: codes "expired" and
// "dead" carry the job's owner.
func (b *Broker) finishedReply(ctx context.Context, id string, v any) {
	code, rest, err := reply(v)
	if err != nil || len(rest) == 0 {
		return
	}
	owner, _ := rest[0].(string)
	switch code {
	case "expired":
		b.finished(ctx, id, owner, b.ttl())
	case "dead":
		b.finished(ctx, id, owner, b.deadTTL())
	}
}

// reply splits a script's answer into its code and the rest.
func reply(v any) (string, []any, error) {
	list, ok := v.([]any)
	if !ok || len(list) == 0 {
		return "", nil, fmt.Errorf("unexpected script reply %v", v)
	}
	code, ok := list[0].(string)
	if !ok {
		return "", nil, fmt.Errorf("unexpected script reply %v", v)
	}
	return code, list[1:], nil
}

// leaseErr maps a fencing failure code to the contract's error.
func leaseErr(code string) error {
	switch code {
	case "lost":
		return broker.ErrLeaseLost
	case "canceled":
		return broker.ErrCanceled
	}
	return fmt.Errorf("unexpected script reply %q", code)
}

// scriptCall is one script invocation for runScripts.
type scriptCall struct {
	s    *redis.Script
	keys []string
	args []any
}

// runScripts runs scripts in one pipeline and returns their commands in order. A script missing
// from the server's cache (Redis restarted, SCRIPT FLUSH) did nothing, so those are loaded and
// run again.
func (b *Broker) runScripts(ctx context.Context, calls []scriptCall) ([]*redis.Cmd, error) {
	cmds := make([]*redis.Cmd, len(calls))
	todo := make([]int, len(calls))
	for i := range todo {
		todo[i] = i
	}
	for try := 0; ; try++ {
		pipe := b.rdb.Pipeline()
		for _, i := range todo {
			cmds[i] = calls[i].s.EvalSha(ctx, pipe, calls[i].keys, calls[i].args...)
		}
		_, err := pipe.Exec(ctx)
		if err == nil {
			return cmds, nil
		}
		var again []int
		for _, i := range todo {
			if isNoScript(cmds[i].Err()) {
				again = append(again, i)
			}
		}
		if len(again) == 0 || try > 0 {
			return cmds, err
		}
		for _, i := range again {
			if err := calls[i].s.Load(ctx, b.rdb).Err(); err != nil {
				return cmds, err
			}
		}
		todo = again
	}
}

func isNoScript(err error) bool {
	return err != nil && strings.HasPrefix(err.Error(), "NOSCRIPT")
}

// leaseArgs are the fencing arguments every lease script starts with.
func leaseArgs(l *broker.Lease, nowMS int64) []any {
	return []any{l.WorkerID, l.Attempt, l.Token, nowMS}
}

func checkLease(l *broker.Lease) error {
	if l == nil || l.Job.ID == "" || l.Job.Model == "" || l.Token == "" {
		return fmt.Errorf("invalid lease: %w", broker.ErrLeaseLost)
	}
	return nil
}
