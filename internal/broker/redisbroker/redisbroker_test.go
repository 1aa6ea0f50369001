package redisbroker

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/neovratz/neovratz/internal/broker"
	"github.com/neovratz/neovratz/internal/broker/brokertest"
	"github.com/neovratz/neovratz/internal/job"
	"github.com/neovratz/neovratz/internal/redistest"
)

func quietLogger() *slog.Logger { return slog.New(slog.NewTextHandler(io.Discard, nil)) }

// open returns a broker on the test Redis under a fresh prefix, closed when the test ends.
func open(t *testing.T, rdb redis.UniversalClient, cfg broker.Config) (*Broker, string) {
	t.Helper()
	prefix := redistest.Prefix(t)
	b, err := New(context.Background(), rdb, Options{Config: cfg, Prefix: prefix, Logger: quietLogger()})
	if err != nil {
		t.Fatalf("new: %v", err)
	}
	t.Cleanup(func() { b.Close() })
	return b, prefix
}

func TestConformance(t *testing.T) {
	brokertest.Run(t, func(t *testing.T, cfg broker.Config) broker.Broker {
		// A client per broker, as each process has its own: the suite's tests run in parallel,
		// and one shared pool would let one test's load delay another's lease extensions.
		rdb := redistest.Client(t)
		prefix := redistest.Prefix(t)
		b, err := New(context.Background(), rdb, Options{Config: cfg, Prefix: prefix, Logger: quietLogger()})
		if err != nil {
			t.Fatalf("new: %v", err)
		}
		return b
	})
}

func ctxT(t *testing.T) context.Context {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	t.Cleanup(cancel)
	return ctx
}

func newJob(model string) job.Job {
	return job.Job{Kind: job.KindChat, Model: model, Owner: "k", Input: json.RawMessage(`{}`)}
}

func mustEnqueue(t *testing.T, b *Broker, j job.Job) job.Job {
	t.Helper()
	got, _, err := b.Enqueue(ctxT(t), j)
	if err != nil {
		t.Fatalf("enqueue: %v", err)
	}
	return got
}

func mustReserve(t *testing.T, b *Broker, worker string, models ...string) *broker.Lease {
	t.Helper()
	ls, err := b.Reserve(ctxT(t), worker, models, 1)
	if err != nil || len(ls) != 1 {
		t.Fatalf("reserve: %v, %v", ls, err)
	}
	return ls[0]
}

// crc16 is the CRC16/XMODEM that Redis Cluster hashes keys with.
func crc16(s string) uint16 {
	var crc uint16
	for i := 0; i < len(s); i++ {
		crc ^= uint16(s[i]) << 8
		for range 8 {
			if crc&0x8000 != 0 {
				crc = crc<<1 ^ 0x1021
			} else {
				crc <<= 1
			}
		}
	}
	return crc
}

func slot(key string) uint16 { return crc16(hashTag(key)) % 16384 }

func TestHashTag(t *testing.T) {
	tests := []struct{ key, want string }{
		{"nv:{m:llama}:queued", "m:llama"},
		{"nv:jobidx:job_1", "nv:jobidx:job_1"},
		{"nv:{}:x", "nv:{}:x"},
		{"nv:{m:a}b}:q", "m:a"},
		{"nv:{w}:workers", "w"},
	}
	for _, tc := range tests {
		if got := hashTag(tc.key); got != tc.want {
			t.Errorf("hashTag(%q) = %q, want %q", tc.key, got, tc.want)
		}
	}
	// Known slots from the Redis Cluster specification.
	if got := slot("123456789"); got != 0x31C3%16384 {
		t.Errorf("slot(123456789) = %d, want %d", got, 0x31C3%16384)
	}
	if slot("{user1000}.following") != slot("{user1000}.followers") {
		t.Error("keys with the same tag landed in different slots")
	}
}

// slotHook checks every EVAL/EVALSHA the broker sends: all its KEYS must be in one slot.
type slotHook struct {
	mu      sync.Mutex
	scripts int
	bad     []string
}

func (h *slotHook) check(cmd redis.Cmder) {
	args := cmd.Args()
	name := strings.ToLower(cmd.Name())
	if name != "evalsha" && name != "eval" || len(args) < 3 {
		return
	}
	n, err := strconv.Atoi(toString(args[2]))
	if err != nil {
		return
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	h.scripts++
	var first string
	for _, a := range args[3 : 3+n] {
		k := toString(a)
		if first == "" {
			first = k
		} else if slot(k) != slot(first) {
			h.bad = append(h.bad, first+" vs "+k)
		}
	}
}

func toString(v any) string {
	switch v := v.(type) {
	case string:
		return v
	case int:
		return strconv.Itoa(v)
	case int64:
		return strconv.FormatInt(v, 10)
	}
	return ""
}

func (h *slotHook) DialHook(next redis.DialHook) redis.DialHook { return next }
func (h *slotHook) ProcessHook(next redis.ProcessHook) redis.ProcessHook {
	return func(ctx context.Context, cmd redis.Cmder) error {
		h.check(cmd)
		return next(ctx, cmd)
	}
}
func (h *slotHook) ProcessPipelineHook(next redis.ProcessPipelineHook) redis.ProcessPipelineHook {
	return func(ctx context.Context, cmds []redis.Cmder) error {
		for _, c := range cmds {
			h.check(c)
		}
		return next(ctx, cmds)
	}
}

// TestScriptsStayInOneSlot runs every kind of transition and checks that each script call's
// keys hash to one Cluster slot, and that a job's idempotency key (reached from the scripts by
// name) shares its job's slot.
func TestScriptsStayInOneSlot(t *testing.T) {
	rdb := redistest.Client(t)
	hook := &slotHook{}
	rdb.AddHook(hook)
	b, prefix := open(t, rdb, broker.Config{Lease: 300 * time.Millisecond, Backoff: func(int) time.Duration { return 10 * time.Millisecond }})
	ctx := ctxT(t)
	model := "org/model:q4{x}"

	j := newJob(model)
	j.IdempotencyKey = "idem:{tricky}"
	j.Deadline = time.Now().Add(time.Hour)
	first := mustEnqueue(t, b, j)
	if _, existing, err := b.Enqueue(ctx, j); err != nil || !existing {
		t.Fatalf("idempotent enqueue: existing=%v %v", existing, err)
	}
	l := mustReserve(t, b, "w1", model)
	if err := b.ExtendLease(ctx, l); err != nil {
		t.Fatal(err)
	}
	if _, err := b.AppendEvent(ctx, l, broker.Event{Type: broker.EventDelta, Data: json.RawMessage(`"x"`)}); err != nil {
		t.Fatal(err)
	}
	if err := b.Release(ctx, l); err != nil {
		t.Fatal(err)
	}
	l = mustReserve(t, b, "w1", model)
	if err := b.Fail(ctx, l, job.Error{Message: "retry", Retryable: true}); err != nil {
		t.Fatal(err)
	}
	l = mustReserve(t, b, "w1", model) // promoted by the maintenance loop
	if err := b.Fail(ctx, l, job.Error{Message: "final"}); err != nil {
		t.Fatal(err)
	}
	if _, err := b.Requeue(ctx, first.ID); err != nil {
		t.Fatal(err)
	}
	l = mustReserve(t, b, "w1", model)
	time.Sleep(500 * time.Millisecond) // lapse: reclaimed by the maintenance loop
	l = mustReserve(t, b, "w2", model)
	if err := b.Complete(ctx, l, json.RawMessage(`{}`)); err != nil {
		t.Fatal(err)
	}
	c := mustEnqueue(t, b, newJob(model))
	if _, err := b.Cancel(ctx, c.ID); err != nil {
		t.Fatal(err)
	}
	if err := b.RegisterWorker(ctx, broker.WorkerInfo{ID: "w1"}); err != nil {
		t.Fatal(err)
	}
	if err := b.HeartbeatWorker(ctx, "w1"); err != nil {
		t.Fatal(err)
	}

	hook.mu.Lock()
	defer hook.mu.Unlock()
	if hook.scripts < 10 {
		t.Fatalf("saw %d script calls, want the transitions above", hook.scripts)
	}
	if len(hook.bad) > 0 {
		t.Fatalf("scripts touching several slots: %v", hook.bad)
	}
	mk := keys{prefix}.model(model)
	ik := mk.idem(j.Owner, j.IdempotencyKey)
	if slot(ik) != slot(mk.job(first.ID)) {
		t.Fatalf("idempotency key %q and job hash are in different slots", ik)
	}
	if n, _ := rdb.Exists(ctx, ik).Result(); n != 1 {
		t.Fatalf("idempotency key %q not found", ik)
	}
}

// TestStreamEntriesDeletedAfterAck: once a job is finished (or handed back) its stream entries
// are acknowledged and deleted, so the streams hold nothing and nothing stays pending.
func TestStreamEntriesDeletedAfterAck(t *testing.T) {
	rdb := redistest.Client(t)
	b, prefix := open(t, rdb, broker.Config{})
	ctx := ctxT(t)
	for range 3 {
		mustEnqueue(t, b, newJob("m1"))
	}
	l := mustReserve(t, b, "w1", "m1")
	if err := b.Release(ctx, l); err != nil {
		t.Fatal(err)
	}
	for range 3 {
		l := mustReserve(t, b, "w1", "m1")
		if err := b.Complete(ctx, l, json.RawMessage(`{}`)); err != nil {
			t.Fatal(err)
		}
	}
	c := mustEnqueue(t, b, newJob("m1"))
	if _, err := b.Cancel(ctx, c.ID); err != nil {
		t.Fatal(err)
	}
	for _, s := range (keys{prefix}).model("m1").streams() {
		n, err := rdb.XLen(ctx, s).Result()
		if err != nil {
			t.Fatal(err)
		}
		if n != 0 {
			t.Errorf("stream %s holds %d entries after every job finished, want 0", s, n)
		}
		p, err := rdb.XPending(ctx, s, group).Result()
		if err != nil {
			t.Fatal(err)
		}
		if p.Count != 0 {
			t.Errorf("stream %s has %d pending entries, want 0", s, p.Count)
		}
	}
}

// TestOrphanedDeliveryReclaimedByXAutoClaim: an entry delivered by XREADGROUP to a reader that
// died before marking its job running sits pending in the stream; XAUTOCLAIM finds it once it
// has been idle for a lease and the job is delivered again, with no attempt counted.
func TestOrphanedDeliveryReclaimedByXAutoClaim(t *testing.T) {
	rdb := redistest.Client(t)
	lease := 300 * time.Millisecond
	b, prefix := open(t, rdb, broker.Config{Lease: lease})
	ctx := ctxT(t)
	j := mustEnqueue(t, b, newJob("m1"))
	s := keys{prefix}.model("m1").stream(streamNum(job.PriorityNormal, false))
	res, err := rdb.XReadGroup(ctx, &redis.XReadGroupArgs{Group: group, Consumer: "dead-reader", Streams: []string{s, ">"}, Count: 1, Block: -1}).Result()
	if err != nil || len(res) != 1 || len(res[0].Messages) != 1 {
		t.Fatalf("raw xreadgroup: %v, %v", res, err)
	}
	start := time.Now()
	l := mustReserve(t, b, "w1", "m1")
	if l.Job.ID != j.ID || l.Attempt != 1 {
		t.Fatalf("got %s attempt %d, want %s attempt 1", l.Job.ID, l.Attempt, j.ID)
	}
	if d := time.Since(start); d < lease/2 {
		t.Errorf("redelivered after %v, before the entry was idle for a lease (%v)", d, lease)
	}
	if err := b.Complete(ctx, l, nil); err != nil {
		t.Fatal(err)
	}
	if p, _ := rdb.XPending(ctx, s, group).Result(); p == nil || p.Count != 0 {
		t.Errorf("pending after completion: %+v", p)
	}
}

// TestLapsedLeaseReclaimedByXAutoClaim: with the lease-deadline ZSET entry gone (as if that
// bookkeeping were lost), a lapsed lease is still found by XAUTOCLAIM from the stream's idle
// time and the job is delivered again with the attempt counted.
func TestLapsedLeaseReclaimedByXAutoClaim(t *testing.T) {
	rdb := redistest.Client(t)
	lease := 300 * time.Millisecond
	b, prefix := open(t, rdb, broker.Config{Lease: lease})
	ctx := ctxT(t)
	j := mustEnqueue(t, b, newJob("m1"))
	old := mustReserve(t, b, "w1", "m1")
	if err := rdb.ZRem(ctx, keys{prefix}.model("m1").running(), j.ID).Err(); err != nil {
		t.Fatal(err)
	}
	l := mustReserve(t, b, "w2", "m1")
	if l.Job.ID != j.ID || l.Attempt != 2 {
		t.Fatalf("got %s attempt %d, want %s attempt 2", l.Job.ID, l.Attempt, j.ID)
	}
	if err := b.Complete(ctx, old, nil); !errors.Is(err, broker.ErrLeaseLost) {
		t.Fatalf("stale complete: %v, want ErrLeaseLost", err)
	}
	if err := b.Complete(ctx, l, nil); err != nil {
		t.Fatal(err)
	}
}

// TestExtendResetsIdle: ExtendLease XCLAIMs the entry to its holder, so XAUTOCLAIM (idle longer
// than a lease) never takes a job whose holder keeps extending it.
func TestExtendResetsIdle(t *testing.T) {
	rdb := redistest.Client(t)
	lease := 300 * time.Millisecond
	b, prefix := open(t, rdb, broker.Config{Lease: lease})
	ctx := ctxT(t)
	j := mustEnqueue(t, b, newJob("m1"))
	l := mustReserve(t, b, "w1", "m1")
	s := keys{prefix}.model("m1").stream(streamNum(job.PriorityNormal, false))
	time.Sleep(lease / 2)
	if err := b.ExtendLease(ctx, l); err != nil {
		t.Fatal(err)
	}
	ps, err := rdb.XPendingExt(ctx, &redis.XPendingExtArgs{Stream: s, Group: group, Start: "-", End: "+", Count: 10}).Result()
	if err != nil || len(ps) != 1 {
		t.Fatalf("pending: %v, %v", ps, err)
	}
	if ps[0].Idle > lease/4 || ps[0].Consumer != "w1" {
		t.Fatalf("after extend: idle %v consumer %s, want idle reset and held by w1", ps[0].Idle, ps[0].Consumer)
	}
	if got, _ := b.Get(ctx, j.ID); got.Status != job.StatusRunning {
		t.Fatalf("status %s, want running", got.Status)
	}
}

func TestDurableModeConfig(t *testing.T) {
	tests := []struct {
		name    string
		d       durability
		waitAOF bool
		wantErr string
	}{
		{"7.0 everysec", durability{serverVersion{7, 0}, true, "yes", "everysec", "noeviction"}, false, "appendfsync always"},
		{"7.0 always", durability{serverVersion{7, 0}, true, "yes", "always", "noeviction"}, false, ""},
		{"7.0 no aof", durability{serverVersion{7, 0}, true, "no", "always", "noeviction"}, false, "appendonly yes"},
		{"7.0 config hidden", durability{version: serverVersion{7, 0}}, false, "CONFIG GET"},
		{"7.2 everysec", durability{serverVersion{7, 2}, true, "yes", "everysec", "noeviction"}, true, ""},
		{"8.0 no aof", durability{serverVersion{8, 0}, true, "no", "everysec", "noeviction"}, false, "appendonly yes"},
		{"7.4 config hidden", durability{version: serverVersion{7, 4}}, true, ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			waitAOF, err := durableMode(tc.d)
			if tc.wantErr == "" {
				if err != nil || waitAOF != tc.waitAOF {
					t.Fatalf("durableMode = %v, %v; want %v, nil", waitAOF, err, tc.waitAOF)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
				t.Fatalf("durableMode err = %v, want one mentioning %q", err, tc.wantErr)
			}
		})
	}
}

// TestDurableModeRefusesEverysec: on the test Redis (7.0, appendfsync everysec, no WAITAOF)
// durable mode must not start.
func TestDurableModeRefusesEverysec(t *testing.T) {
	rdb := redistest.Client(t)
	ctx := ctxT(t)
	d, err := readDurability(ctx, rdb)
	if err != nil {
		t.Fatal(err)
	}
	if d.version.atLeast(7, 2) || !d.configKnown || d.appendfsync == "always" {
		t.Skipf("test Redis is %d.%d with appendfsync %q; this test needs one without WAITAOF fsyncing everysec",
			d.version.major, d.version.minor, d.appendfsync)
	}
	_, err = New(ctx, rdb, Options{Durable: true, Prefix: redistest.Prefix(t), Logger: quietLogger()})
	if err == nil || !strings.Contains(err.Error(), "appendfsync always") {
		t.Fatalf("durable New on redis %d.%d with appendfsync %s: err = %v, want a refusal",
			d.version.major, d.version.minor, d.appendfsync, err)
	}
	// Non-durable mode starts on the same server.
	b, err := New(ctx, rdb, Options{Prefix: redistest.Prefix(t), Logger: quietLogger()})
	if err != nil {
		t.Fatal(err)
	}
	b.Close()
}

func TestParseVersion(t *testing.T) {
	v, err := parseVersion("# Server\r\nredis_version:7.0.15\r\nredis_git_sha1:00000000\r\n")
	if err != nil || v != (serverVersion{7, 0}) {
		t.Fatalf("parseVersion = %v, %v", v, err)
	}
	if _, err := parseVersion("# Server\r\n"); err == nil {
		t.Fatal("parseVersion without redis_version succeeded")
	}
}

// TestReserveAcrossModelsFIFO: within a priority, jobs of several models come out oldest
// first, and a higher priority of any model comes before them.
func TestReserveAcrossModelsFIFO(t *testing.T) {
	rdb := redistest.Client(t)
	b, _ := open(t, rdb, broker.Config{})
	var want []string
	for _, m := range []string{"mb", "ma", "mb", "ma"} {
		want = append(want, mustEnqueue(t, b, newJob(m)).ID)
		time.Sleep(2 * time.Millisecond) // distinct stream ids
	}
	hi := newJob("mb")
	hi.Priority = job.PriorityHigh
	want = append([]string{mustEnqueue(t, b, hi).ID}, want...)
	for i, id := range want {
		l := mustReserve(t, b, "w1", "ma", "mb")
		if l.Job.ID != id {
			t.Fatalf("reservation %d: %s, want %s", i, l.Job.ID, id)
		}
	}
}

func TestClosedBroker(t *testing.T) {
	rdb := redistest.Client(t)
	b, _ := open(t, rdb, broker.Config{})
	done := make(chan error, 1)
	go func() {
		_, err := b.Reserve(context.Background(), "w1", []string{"m1"}, 1)
		done <- err
	}()
	time.Sleep(100 * time.Millisecond)
	if err := b.Close(); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-done:
		if !errors.Is(err, broker.ErrClosed) {
			t.Fatalf("reserve during close: %v, want ErrClosed", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("reserve did not end after close")
	}
	if _, _, err := b.Enqueue(ctxT(t), newJob("m1")); !errors.Is(err, broker.ErrClosed) {
		t.Fatalf("enqueue after close: %v, want ErrClosed", err)
	}
}

func TestBadPrefix(t *testing.T) {
	rdb := redistest.Client(t)
	if _, err := New(ctxT(t), rdb, Options{Prefix: "a{b}"}); err == nil {
		t.Fatal("a prefix with braces was accepted")
	}
}

func TestCheckWaitAOF(t *testing.T) {
	tests := []struct {
		name string
		val  any
		err  error
		ok   bool
	}{
		{"confirmed", []any{int64(1), int64(0)}, nil, true},
		{"not confirmed", []any{int64(0), int64(0)}, nil, false},
		{"error", nil, errors.New("ERR WAITAOF cannot be used when numlocal is set but appendonly is disabled"), false},
		{"odd reply", "OK", nil, false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			cmd := redis.NewCmd(context.Background(), "waitaof", 1, 0, 5000)
			if tc.err != nil {
				cmd.SetErr(tc.err)
			} else {
				cmd.SetVal(tc.val)
			}
			if err := checkWaitAOF(cmd); (err == nil) != tc.ok {
				t.Fatalf("checkWaitAOF(%v, %v) = %v, want ok=%v", tc.val, tc.err, err, tc.ok)
			}
		})
	}
}

// TestModelCacheStale: a cached model that no longer names the job's (its id taken over by a
// job of another model, enqueued by another process) or a job that is gone is a miss, not an
// answer: Get and Events look the model up again, and a gone job is ErrNotFound.
func TestModelCacheStale(t *testing.T) {
	rdb := redistest.Client(t)
	b, _ := open(t, rdb, broker.Config{})
	ctx := ctxT(t)
	j := mustEnqueue(t, b, newJob("m-real"))

	for _, wait := range []time.Duration{0, 100 * time.Millisecond} {
		t.Run(fmt.Sprintf("wait=%s", wait), func(t *testing.T) {
			b.models.put(j.ID, "m-stale")
			evs, err := b.Events(ctx, j.ID, "", 10, wait)
			if err != nil || len(evs) == 0 {
				t.Fatalf("events = %v, %v; want the queued event", evs, err)
			}
			b.models.put(j.ID, "m-stale")
			// Past the last event: a blocking read on the stale model's (empty) log finds
			// nothing, then the check of the job corrects the model and the wait goes on.
			got, err := b.Events(ctx, j.ID, evs[len(evs)-1].ID, 10, wait)
			if err != nil || len(got) != 0 {
				t.Errorf("events after the last = %v, %v; want none", got, err)
			}
			if m, _ := b.models.get(j.ID); m != "m-real" {
				t.Errorf("cached model = %q, want m-real", m)
			}
		})
	}
	b.models.put(j.ID, "m-stale")
	if got, err := b.Get(ctx, j.ID); err != nil || got.Model != "m-real" {
		t.Errorf("get = %v, %v; want the job of m-real", got.Model, err)
	}

	// Gone: the job's keys and index deleted, its model still cached.
	k := b.k.model("m-real")
	if err := rdb.Del(ctx, k.job(j.ID), k.events(j.ID), b.k.index(j.ID)).Err(); err != nil {
		t.Fatal(err)
	}
	for _, wait := range []time.Duration{0, 100 * time.Millisecond} {
		b.models.put(j.ID, "m-real")
		if _, err := b.Events(ctx, j.ID, "", 10, wait); !errors.Is(err, broker.ErrNotFound) {
			t.Errorf("events of a gone job (wait %s): %v, want ErrNotFound", wait, err)
		}
	}
	b.models.put(j.ID, "m-real")
	if _, err := b.Get(ctx, j.ID); !errors.Is(err, broker.ErrNotFound) {
		t.Errorf("get of a gone job: %v, want ErrNotFound", err)
	}
}

// TestReserveAfterDrained: once a reserver's blocking read has found its streams empty, its next
// Reserve goes straight to the blocking read; what queued meanwhile still comes out in priority
// and FIFO order, and nothing is lost or handed out twice.
func TestReserveAfterDrained(t *testing.T) {
	rdb := redistest.Client(t)
	b, _ := open(t, rdb, broker.Config{})
	ctx := ctxT(t)
	short, cancel := context.WithTimeout(ctx, 50*time.Millisecond)
	ls, err := b.Reserve(short, "w", []string{"m"}, 1)
	cancel()
	if len(ls) != 0 {
		t.Fatalf("reserve on an empty queue: %v, %v", ls, err)
	}
	if !b.drained.has("w\x00m") {
		t.Fatal("the reserver is not marked drained after an empty blocking read")
	}
	var want []string
	for _, p := range []job.Priority{job.PriorityLow, job.PriorityNormal, job.PriorityNormal, job.PriorityHigh} {
		j := newJob("m")
		j.Priority = p
		j = mustEnqueue(t, b, j)
		if p == job.PriorityHigh {
			want = append([]string{j.ID}, want...)
		} else if p == job.PriorityNormal {
			want = append(want, j.ID)
		}
	}
	var got []string
	for range 3 {
		got = append(got, mustReserve(t, b, "w", "m").Job.ID)
	}
	if !slices.Equal(got, want) {
		t.Errorf("reserved %v, want %v (high, then normal in FIFO order)", got, want)
	}
	last := mustReserve(t, b, "w", "m")
	if last.Job.Priority != job.PriorityLow {
		t.Errorf("last reserved job has priority %s, want low", last.Job.Priority)
	}
}

// TestEnqueueTakenID: the index is written in the enqueue's own pipeline, so an id that a live
// job of another model holds is only found after the new job is stored. That job is discarded,
// and the live one keeps its id, index and listing entry; an index whose job is gone is taken
// over (and made permanent again).
func TestEnqueueTakenID(t *testing.T) {
	rdb := redistest.Client(t)
	b, _ := open(t, rdb, broker.Config{})
	ctx := ctxT(t)
	first := mustEnqueue(t, b, newJob("m-a"))

	dup := newJob("m-b")
	dup.ID = first.ID
	if _, _, err := b.Enqueue(ctx, dup); err == nil || !strings.Contains(err.Error(), "taken") {
		t.Fatalf("enqueue under a taken id: %v, want a taken error", err)
	}
	if n, _ := rdb.Exists(ctx, b.k.model("m-b").job(first.ID), b.k.model("m-b").events(first.ID)).Result(); n != 0 {
		t.Errorf("the refused job's keys are still there (%d)", n)
	}
	if m, _ := rdb.Get(ctx, b.k.index(first.ID)).Result(); m != "m-a" {
		t.Errorf("index = %q, want m-a", m)
	}
	if got, err := b.Get(ctx, first.ID); err != nil || got.Model != "m-a" {
		t.Errorf("get = %v, %v; want the job of m-a", got.Model, err)
	}
	if jobs, _, err := b.List(ctx, broker.ListFilter{Owner: "k"}); err != nil || len(jobs) != 1 || jobs[0].ID != first.ID {
		t.Errorf("list = %v, %v; want the first job alone", jobs, err)
	}
	if n, _ := rdb.ZCard(ctx, b.k.model("m-b").queued()).Result(); n != 0 {
		t.Errorf("m-b's queue holds %d jobs, want none", n)
	}

	// Same id, same model, same owner and idempotency key: the first job comes back.
	j := newJob("m-a")
	j.IdempotencyKey = "once"
	kept := mustEnqueue(t, b, j)
	again := j
	again.ID = kept.ID
	if got, existing, err := b.Enqueue(ctx, again); err != nil || !existing || got.ID != kept.ID {
		t.Fatalf("resubmission = %v, %v, %v; want the kept job", got.ID, existing, err)
	}
	if n, _ := rdb.ZScore(ctx, b.k.all(), kept.ID).Result(); n == 0 {
		t.Error("the kept job left the listing")
	}

	// An orphaned index (its job gone) is taken over.
	orphan := job.NewID()
	if err := rdb.Set(ctx, b.k.index(orphan), "m-gone", time.Hour).Err(); err != nil {
		t.Fatal(err)
	}
	o := newJob("m-b")
	o.ID = orphan
	mustEnqueue(t, b, o)
	if m, _ := rdb.Get(ctx, b.k.index(orphan)).Result(); m != "m-b" {
		t.Errorf("orphaned index = %q, want m-b", m)
	}
	if ttl, _ := rdb.PTTL(ctx, b.k.index(orphan)).Result(); ttl != -1 {
		t.Errorf("orphaned index's TTL = %v, want none", ttl)
	}
}

// TestRefusedCompletionKeepsJob: Complete sends the finished job's bookkeeping (index TTL,
// forget entry) with the script; when the script refuses (the lease lapsed and another worker
// has the job), that bookkeeping is undone, and a later completion does it.
func TestRefusedCompletionKeepsJob(t *testing.T) {
	rdb := redistest.Client(t)
	clock := &fakeClock{t: time.Now()}
	b, _ := open(t, rdb, broker.Config{Lease: time.Minute, Now: clock.Now})
	ctx := ctxT(t)
	j := mustEnqueue(t, b, newJob("m"))
	stale := mustReserve(t, b, "w1", "m")
	clock.Add(2 * time.Minute)
	// Reclaim the lapsed lease the way maintenance does, then hand the job to w2.
	_, nowMS, nowNS := b.now()
	mk := b.k.model("m")
	if _, err := b.runScripts(ctx, []scriptCall{{scriptReclaim, mk.jobKeys(j.ID), []any{j.ID, "", 0, nowMS, nowNS, b.deadTTL(), lapsedError}}}); err != nil {
		t.Fatal(err)
	}
	fresh := mustReserve(t, b, "w2", "m")
	if err := b.Complete(ctx, stale, json.RawMessage(`{}`)); !errors.Is(err, broker.ErrLeaseLost) {
		t.Fatalf("stale completion: %v, want ErrLeaseLost", err)
	}
	if ttl, _ := rdb.PTTL(ctx, b.k.index(j.ID)).Result(); ttl != -1 {
		t.Errorf("index TTL after a refused completion = %v, want none", ttl)
	}
	if _, err := rdb.ZScore(ctx, b.k.forget(), forgetMember(j.ID, j.Owner)).Result(); !errors.Is(err, redis.Nil) {
		t.Errorf("forget entry after a refused completion: %v, want none", err)
	}
	if err := b.Complete(ctx, fresh, json.RawMessage(`{}`)); err != nil {
		t.Fatal(err)
	}
	if ttl, _ := rdb.PTTL(ctx, b.k.index(j.ID)).Result(); ttl <= 0 {
		t.Errorf("index TTL after the completion = %v, want the retention", ttl)
	}
	if _, err := rdb.ZScore(ctx, b.k.forget(), forgetMember(j.ID, j.Owner)).Result(); err != nil {
		t.Errorf("forget entry after the completion: %v", err)
	}
}
