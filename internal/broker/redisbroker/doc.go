// Package redisbroker is the production broker: the broker.Broker contract on Redis Streams.
//
// # Layout
//
// Each model has, under its own hash tag {m:MODEL} (so a model's queue is one Cluster slot):
// six queue streams (a front and a main stream per priority, one consumer group "workers"),
// ZSETs of queued, running (by lease deadline), scheduled (retry backoff), deadline-bound and
// dead-lettered job ids, and per job a hash and an event stream. Every state change is one Lua
// script over those keys (scripts.go), so it is atomic. A small index key PREFIX:jobidx:ID names
// a job's model, so Get can find it; listings (per owner and overall), the set of models and the
// worker registry sit under their own keys. Those keys are outside the model's slot, so no
// script can write them: the commands that do are sent in the same pipeline as the script
// (Enqueue, Complete), and put right afterwards in the rare case the script refuses.
//
// # Pickup and leases
//
// Reserve for one model is one script: it reads the model's streams in the order they are
// served (priority first, then front before main) with XREADGROUP and marks each delivered
// job running under a lease, dropping the entries of jobs canceled or expired meanwhile. Across
// several models Reserve first looks at what each model's streams would hand out next (without
// delivering it), picks the best — priority, then front before main, then oldest — and takes
// it with XREADGROUP and the mark-running script. When nothing is queued it blocks in
// XREADGROUP BLOCK over all the streams (in bounded slices, to notice a canceled context), so
// it never sleep-polls.
//
// Blocking reads (Reserve, Events) run on a connection pool of their own, cloned from the
// client's options, so readers waiting on connections never delay lease extensions.
//
// A lease is fenced by (worker, attempt, stream entry): ExtendLease, Complete, Fail, Release and
// AppendEvent act only while all three still match and the lease has not lapsed. ExtendLease
// also XCLAIMs the entry to its holder, resetting its idle time. A background maintenance loop
// (stopped by Close) reclaims lapsed leases both from the ZSET of lease deadlines and with
// XAUTOCLAIM (idle longer than a lease, which also catches entries delivered to a reader that
// died before marking them running), requeues or dead-letters them, promotes retries whose
// backoff is over, expires queued jobs past their deadline, and drops forgotten jobs from the
// listings. Every process runs the loop, but only the holder of a maintenance lock sweeps, so
// the load does not grow with the number of processes. Entries are deleted (XDEL) once
// acknowledged, so streams hold only live entries and are never trimmed; consumers are deleted
// only when they hold no pending entries.
//
// # Decisions
//
// Release position: a Stream cannot prepend, so a released job — like a lapsed one and a
// retry — goes to its priority's front stream, which Reserve reads before the main stream. It
// is served before every job that has never been handed out, in the order jobs were handed back.
//
// Idempotency scope: an idempotency key lives under the model's tag, so the enqueue script checks
// and sets it atomically with the job. The key is therefore per (model, owner, key): the same
// owner and key sent with another model makes a new job.
//
// Retention: a finished job's hash, events, idempotency key and index expire after
// Config.Retention. A dead-lettered job is kept DeadLetterRetention times longer, so that it
// can be inspected and requeued; Requeue makes its keys permanent again.
//
// Durable mode (Options.Durable) acknowledges an enqueue only once Redis has it on disk. On
// Redis 7.2 and later every enqueue ends with WAITAOF 1 0 on the same connection; if WAITAOF
// does not confirm in time the enqueue returns an error, though the job may exist (a retry with
// the same idempotency key finds it). Older servers (Debian 12 ships 7.0) have no WAITAOF;
// there New requires appendonly yes with appendfsync always, under which Redis fsyncs the
// append-only file before it replies. Durable mode needs a single-primary client (not a
// ClusterClient), since WAITAOF must follow the writes on their connection. See durable.go.
//
// Cluster: every script and every multi-key command of one model stays in its slot. A Reserve
// over several models blocks on all their streams in one XREADGROUP, which Redis Cluster allows
// only when they share a slot; on a Cluster, run one Reserve per model (or per slot).
package redisbroker
