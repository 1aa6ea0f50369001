package redisbroker

import (
	"strconv"
	"strings"

	"github.com/neovratz/neovratz/internal/job"
)

// group is the one consumer group of every queue stream.
const group = "workers"

// Streams per model: for each priority, a front stream (jobs handed back: released, lapsed,
// retried) read before the main stream (new and requeued jobs). Their order here is the order in
// which Reserve serves them, and a stream's 1-based position is its number in the Lua scripts.
const streamsPerModel = 6

// streamNum is the 1-based number of the stream that holds a job of priority p at the front
// (front = true) or at the back of its queue.
func streamNum(p job.Priority, front bool) int {
	n := p.Rank()*2 + 2
	if front {
		n--
	}
	return n
}

// keys names every Redis key of one broker. Keys of one model share the hash tag {m:MODEL}, so
// each Lua script — which only ever touches one model's queue and jobs — stays in one Cluster
// slot. Keys that are read across models (the job index, listings, the model set, the worker
// registry) are only used by plain commands or by scripts over their own tag.
type keys struct {
	prefix string
}

// modelKeys names the keys of one model.
type modelKeys struct {
	base string // "PREFIX:{m:MODEL}:"
}

func (k keys) model(m string) modelKeys {
	return modelKeys{base: k.prefix + ":{m:" + m + "}:"}
}

// index maps a job id to its model, so Get can find the job's hash-tagged keys.
func (k keys) index(id string) string { return k.prefix + ":jobidx:" + id }

// all is a ZSET of every job id by creation time (µs), for List without an owner.
func (k keys) all() string { return k.prefix + ":jobs" }

// owner is a ZSET of one owner's job ids by creation time (µs).
func (k keys) owner(o string) string { return k.prefix + ":owner:" + o }

// forget is a ZSET of "ID OWNER" by the time (ms) a finished job expires, so maintenance can
// drop the job from the listings then (the listings are outside the job's slot).
func (k keys) forget() string { return k.prefix + ":forget" }

// forgetMember is a job's member in the forget ZSET; ids have no spaces.
func forgetMember(id, owner string) string { return id + " " + owner }

// lock is the maintenance lock: the one process that holds it runs the sweeps.
func (k keys) lock() string { return k.prefix + ":maintenance" }

// models is the SET of every model that has had a job.
func (k keys) models() string { return k.prefix + ":models" }

// workers is the ZSET of worker ids by last heartbeat (ms); worker holds one worker's JSON.
// Both share the hash tag {w} so the registry scripts stay in one slot.
func (k keys) workers() string           { return k.prefix + ":{w}:workers" }
func (k keys) worker(id string) string   { return k.prefix + ":{w}:worker:" + id }
func (m modelKeys) job(id string) string { return m.base + "job:" + id }

// events is a job's event log stream.
func (m modelKeys) events(id string) string { return m.base + "ev:" + id }

// queued: ZSET of queued job ids (including retries waiting for their backoff) by the time they
// were queued (ms). Its size is the queue depth the cap applies to.
func (m modelKeys) queued() string { return m.base + "queued" }

// running: ZSET of running job ids by lease deadline (ms).
func (m modelKeys) running() string { return m.base + "running" }

// sched: ZSET of queued job ids waiting for a retry backoff, by the time they are due (ms).
func (m modelKeys) sched() string { return m.base + "sched" }

// deadlines: ZSET of queued job ids that have a deadline, by deadline (ms).
func (m modelKeys) deadlines() string { return m.base + "deadlines" }

// dead: ZSET of dead-lettered job ids by the time they failed (ms).
func (m modelKeys) dead() string { return m.base + "dead" }

// stream is queue stream number n (1..streamsPerModel, see streamNum).
func (m modelKeys) stream(n int) string {
	p := job.Priorities[(n-1)/2]
	if n%2 == 1 {
		return m.base + "q:" + string(p) + ":front"
	}
	return m.base + "q:" + string(p)
}

// streams lists the model's queue streams in the order Reserve serves them.
func (m modelKeys) streams() []string {
	out := make([]string, streamsPerModel)
	for i := range out {
		out[i] = m.stream(i + 1)
	}
	return out
}

// idem is the idempotency key of (owner, key) for this model. The owner's length comes first so
// that no two (owner, key) pairs share a name. It lives under the model's tag so that the
// enqueue script can check and set it atomically with the job; the price is that the same key
// reused with another model makes a new job (see the package doc).
func (m modelKeys) idem(owner, key string) string {
	return m.base + "idem:" + strconv.Itoa(len(owner)) + ":" + owner + ":" + key
}

// jobKeys is the KEYS layout shared by every per-job script (see scripts.go).
func (m modelKeys) jobKeys(id string) []string {
	ks := make([]string, 0, 7+streamsPerModel+1)
	ks = append(ks, m.job(id), m.events(id), m.queued(), m.running(), m.sched(), m.deadlines(), m.dead())
	return append(ks, m.streams()...)
}

// hashTag returns the part of a key that Redis Cluster hashes: the text between the first '{'
// and the next '}' when that is non-empty, else the whole key.
func hashTag(key string) string {
	i := strings.IndexByte(key, '{')
	if i < 0 {
		return key
	}
	j := strings.IndexByte(key[i+1:], '}')
	if j <= 0 {
		return key
	}
	return key[i+1 : i+1+j]
}
