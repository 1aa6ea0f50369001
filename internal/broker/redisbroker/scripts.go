package redisbroker

import "github.com/redis/go-redis/v9"

// Every change of a job's state is one Lua script, so it is atomic and a crash between two
// commands cannot leave a job half-moved. All per-job scripts take the same KEYS (see
// modelKeys.jobKeys), all under one model's hash tag:
//
//	KEYS[1] job hash          KEYS[5] sched ZSET       KEYS[8..13] queue streams 1..6
//	KEYS[2] event stream      KEYS[6] deadlines ZSET   KEYS[14] idempotency key (enqueue only)
//	KEYS[3] queued ZSET       KEYS[7] dead ZSET
//	KEYS[4] running ZSET
//
// Times come in ARGV from Config.Now — milliseconds for arithmetic and scores, nanoseconds as
// decimal strings to store — so the broker has one clock. The one key a script reaches without
// it being in KEYS is a job's idempotency key, whose name the job hash holds (idem_key): it is
// built from the same model tag, so it is always in the same slot.
//
// Scripts answer with a table whose first element is a code: 'ok', or what went wrong
// ('lost', 'canceled', 'full', …), mapped to the contract's errors in Go.

// luaPrelude holds the helpers every per-job script shares. A script reads the job's fields it
// needs in one HMGET (load, into J) rather than one HGET each; helpers that change a field keep
// J in step. JOB and EV are variables, not constants: the reserve script points them at each
// job it takes in turn.
const luaPrelude = `
local GROUP = 'workers'
local JOB, EV, QUEUED, RUNNING, SCHED, DEADLINES, DEAD = KEYS[1], KEYS[2], KEYS[3], KEYS[4], KEYS[5], KEYS[6], KEYS[7]

local function int(x) return string.format('%d', x) end
local function num(v) return tonumber(v or '') or 0 end

-- J holds the fields of the job that drive its state, as load read them (false: missing).
local J = {}
local FIELDS = {'id', 'status', 'worker', 'attempts', 'max_attempts', 'entry', 'stream', 'lease_until',
  'deadline_ms', 'prank', 'idem_key', 'owner'}
-- load reads J from JOB and reports whether the job exists.
local function load()
  local v = redis.call('HMGET', JOB, unpack(FIELDS))
  J = {}
  for i, f in ipairs(FIELDS) do J[f] = v[i] end
  return J.id ~= false
end

-- ensure_stream creates a queue stream with its group before its first entry.
local function ensure_stream(key)
  if redis.call('EXISTS', key) == 0 then
    redis.call('XGROUP', 'CREATE', key, GROUP, '0', 'MKSTREAM')
  end
end

-- status_event appends the broker's status event to the job's log; err is JSON or nil; data,
-- when given, is the whole event data (built by the caller).
local function status_event(status, now_ns, err, data)
  if not data or data == '' then
    data = '{"status":"' .. status .. '"'
    if err and err ~= '' then data = data .. ',"error":' .. err end
    data = data .. '}'
  end
  return redis.call('XADD', EV, '*', 'type', 'status', 'data', data, 'time', now_ns)
end

-- ack_entry acknowledges and deletes the job's queue entry, if it has one, so streams hold
-- only live entries and never need trimming. The caller clears the entry and stream fields.
local function ack_entry()
  local e, s = J.entry, tonumber(J.stream or '')
  if e and e ~= '' and s then
    local key = KEYS[7 + s]
    redis.call('XACK', key, GROUP, e)
    redis.call('XDEL', key, e)
  end
  J.entry, J.stream = '', ''
end

-- drop_entry is ack_entry that also clears the job's entry fields.
local function drop_entry()
  ack_entry()
  redis.call('HSET', JOB, 'entry', '', 'stream', '')
end

-- push adds the job's queue entry: at the front of its priority or at the back.
local function push(front)
  local s = num(J.prank) * 2 + 2
  if front then s = s - 1 end
  local key = KEYS[7 + s]
  ensure_stream(key)
  local e = redis.call('XADD', key, '*', 'job', J.id)
  redis.call('HSET', JOB, 'entry', e, 'stream', s)
  J.entry, J.stream = e, tostring(s)
  return e
end

-- mark_queued records the job as queued (the entry is pushed, or scheduled, by the caller).
local function mark_queued(now_ms)
  redis.call('HSET', JOB, 'status', 'queued', 'queued_at', int(now_ms), 'lease_until', '')
  J.status = 'queued'
  redis.call('ZADD', QUEUED, now_ms, J.id)
  redis.call('ZREM', RUNNING, J.id)
  local d = num(J.deadline_ms)
  if d > 0 then redis.call('ZADD', DEADLINES, d, J.id) end
end

-- expire_keys makes the job, its events and its idempotency key disappear after ttl ms.
local function expire_keys(ttl)
  redis.call('PEXPIRE', JOB, ttl)
  redis.call('PEXPIRE', EV, ttl)
  local ik = J.idem_key
  if ik and ik ~= '' then redis.call('PEXPIRE', ik, ttl) end
end

-- finish moves the loaded job to a terminal status, exactly once, with its status event. Only
-- the sets that can hold it are touched: a running job is in the running set alone (marking it
-- running took it out of the others), a queued one in any but that. extra are more field/value
-- pairs to set; data, when given, is the status event's data.
local function finish(status, now_ns, ttl, err, extra, data)
  local id = J.id
  ack_entry()
  if J.status == 'running' then
    redis.call('ZREM', RUNNING, id)
  else
    redis.call('ZREM', QUEUED, id)
    redis.call('ZREM', SCHED, id)
    if num(J.deadline_ms) > 0 then redis.call('ZREM', DEADLINES, id) end
  end
  local f = {'status', status, 'finished_at', now_ns, 'lease_until', '', 'entry', '', 'stream', ''}
  if extra then for _, v in ipairs(extra) do f[#f + 1] = v end end
  redis.call('HSET', JOB, unpack(f))
  J.status = status
  status_event(status, now_ns, err, data)
  expire_keys(ttl)
end

-- fence loads the job and checks that a lease still holds it: nil when it does, else the
-- error code.
local function fence(worker, attempt, entry, now_ms)
  if not load() then return 'lost' end
  if J.status == 'canceled' then return 'canceled' end
  if J.status ~= 'running' or J.worker ~= worker or J.attempts ~= attempt
    or J.entry ~= entry or num(J.lease_until) <= now_ms then
    return 'lost'
  end
  return nil
end

-- mark_running takes the job of a stream entry (stream number s) just delivered to worker: an
-- entry that is no longer the job's (canceled, expired, handed back) is acknowledged and
-- deleted ('skip'), a job past its deadline expires ('expired'), else the job runs under a
-- lease ('ok').
local function mark_running(entry, s, worker, now, now_ns, lease_ms, ttl)
  if not load() or J.status ~= 'queued' or J.entry ~= entry then
    local skey = KEYS[7 + s]
    redis.call('XACK', skey, GROUP, entry)
    redis.call('XDEL', skey, entry)
    return 'skip'
  end
  local d = num(J.deadline_ms)
  if d > 0 and now >= d then
    finish('expired', now_ns, ttl)
    return 'expired'
  end
  local lease_until = now + lease_ms
  redis.call('HSET', JOB, 'status', 'running', 'worker', worker, 'started_at', now_ns,
    'lease_until', int(lease_until), 'attempts', int(num(J.attempts) + 1))
  redis.call('ZREM', QUEUED, J.id)
  if d > 0 then redis.call('ZREM', DEADLINES, J.id) end
  redis.call('ZADD', RUNNING, lease_until, J.id)
  status_event('running', now_ns)
  return 'ok'
end
`

func newScript(body string) *redis.Script { return redis.NewScript(luaPrelude + body) }

// scriptEnqueue stores a new job and queues it: idempotency check, duplicate id check, queue cap,
// job hash, stream entry, queued status event.
// ARGV: now_ms, now_ns, cap, id, prank, deadline_ms (0: none), then the job hash's field/value
// pairs.
var scriptEnqueue = newScript(`
local now = tonumber(ARGV[1])
local idem = KEYS[14]
if idem then
  local ex = redis.call('GET', idem)
  if ex then return {'exists', ex} end
end
if redis.call('EXISTS', JOB) == 1 then return {'duplicate'} end
local cap = tonumber(ARGV[3])
if cap > 0 and redis.call('ZCARD', QUEUED) >= cap then return {'full'} end
local id, d = ARGV[4], tonumber(ARGV[6])
local s = tonumber(ARGV[5]) * 2 + 2
local key = KEYS[7 + s]
ensure_stream(key)
local e = redis.call('XADD', key, '*', 'job', id)
local f = {'entry', e, 'stream', s, 'queued_at', int(now), 'lease_until', ''}
if idem then
  redis.call('SET', idem, id)
  f[#f + 1] = 'idem_key'
  f[#f + 1] = idem
end
for i = 7, #ARGV do f[#f + 1] = ARGV[i] end
redis.call('HSET', JOB, unpack(f))
redis.call('ZADD', QUEUED, now, id)
if d > 0 then redis.call('ZADD', DEADLINES, d, id) end
status_event('queued', ARGV[2])
return {'ok'}
`)

// scriptMarkRunning takes a job whose stream entry was just delivered to a worker (see
// mark_running).
// ARGV: entry id, stream number, worker, now_ms, now_ns, lease_ms, ttl_ms.
var scriptMarkRunning = newScript(`
local code = mark_running(ARGV[1], tonumber(ARGV[2]), ARGV[3], tonumber(ARGV[4]), ARGV[5], tonumber(ARGV[6]), ARGV[7])
if code == 'ok' then return {'ok', redis.call('HGETALL', JOB)} end
if code == 'expired' then return {'expired', J.owner} end
return {code}
`)

// scriptReserve hands out up to n queued jobs of one model in one step: it reads the model's
// streams in the order Reserve serves them with XREADGROUP (without BLOCK, which a script may
// not do) and marks each delivered job running. KEYS are jobKeys(""): KEYS[1] and KEYS[2] are
// the prefixes of the job hashes and event logs, to which the script appends each job's id (the
// keys share the model's hash tag, so they are in the slot of the declared keys). A stream that
// is missing (or has lost its group) is passed over; the blocking read that follows an empty
// answer recreates it.
// ARGV: worker, n, now_ms, now_ns, lease_ms, ttl_ms.
// Reply: {'ok', {entry, stream, HGETALL}..., {id, owner} of jobs that expired...}.
var scriptReserve = newScript(`
local JOBP, EVP = KEYS[1], KEYS[2]
local worker, n, now = ARGV[1], tonumber(ARGV[2]), tonumber(ARGV[3])
local lease_ms = tonumber(ARGV[5])
local got, expired = {}, {}
for s = 1, 6 do
  local key = KEYS[7 + s]
  while #got < n do
    local r = redis.pcall('XREADGROUP', 'GROUP', GROUP, worker, 'COUNT', n - #got, 'STREAMS', key, '>')
    if type(r) ~= 'table' or r.err or not r[1] or #r[1][2] == 0 then break end
    for _, m in ipairs(r[1][2]) do
      local entry, id = m[1], m[2][2]
      JOB, EV = JOBP .. id, EVP .. id
      local code = mark_running(entry, s, worker, now, ARGV[4], lease_ms, ARGV[6])
      if code == 'ok' then
        got[#got + 1] = {entry, redis.call('HGETALL', JOB)}
      elseif code == 'expired' then
        expired[#expired + 1] = {id, J.owner}
      end
    end
  end
  if #got >= n then break end
end
return {'ok', got, expired}
`)

// scriptExtend renews a lease and resets its stream entry's idle time (XCLAIM to the same
// consumer), so XAUTOCLAIM does not take a job whose holder is alive.
// ARGV: worker, attempt, entry, now_ms, lease_ms.
var scriptExtend = newScript(`
local now = tonumber(ARGV[4])
local f = fence(ARGV[1], ARGV[2], ARGV[3], now)
if f then return {f} end
local lease_until = now + tonumber(ARGV[5])
redis.call('HSET', JOB, 'lease_until', int(lease_until))
redis.call('ZADD', RUNNING, lease_until, J.id)
redis.call('XCLAIM', KEYS[7 + num(J.stream)], GROUP, ARGV[1], 0, ARGV[3], 'JUSTID')
return {'ok', int(lease_until)}
`)

// scriptRelease hands a running job back to the front of its priority without counting the
// attempt.
// ARGV: worker, attempt, entry, now_ms, now_ns.
var scriptRelease = newScript(`
local now = tonumber(ARGV[4])
local f = fence(ARGV[1], ARGV[2], ARGV[3], now)
if f then return {f} end
redis.call('HINCRBY', JOB, 'attempts', -1)
ack_entry()
push(true)
mark_queued(now)
status_event('queued', ARGV[5])
return {'ok'}
`)

// scriptComplete finishes a job with its result. The status event's data comes built from Go
// (it may carry the result, see broker.StatusEvent).
// ARGV: worker, attempt, entry, now_ms, now_ns, ttl_ms, result, status event data.
var scriptComplete = newScript(`
local f = fence(ARGV[1], ARGV[2], ARGV[3], tonumber(ARGV[4]))
if f then return {f} end
finish('succeeded', ARGV[5], ARGV[6], nil, {'result', ARGV[7]}, ARGV[8])
return {'ok'}
`)

// scriptFail ends an attempt: a retryable failure with attempts left is queued again (at once at
// the front, or after its backoff through the sched ZSET); anything else fails the job into the
// dead-letter list.
// ARGV: worker, attempt, entry, now_ms, now_ns, dead_ttl_ms, error JSON, retryable (1/0), backoff_ms.
var scriptFail = newScript(`
local now = tonumber(ARGV[4])
local f = fence(ARGV[1], ARGV[2], ARGV[3], now)
if f then return {f} end
local id = J.id
if ARGV[8] == '1' and num(J.attempts) < num(J.max_attempts) then
  redis.call('HSET', JOB, 'error', ARGV[7])
  drop_entry()
  mark_queued(now)
  local backoff = tonumber(ARGV[9])
  if backoff > 0 then
    redis.call('ZADD', SCHED, now + backoff, id)
  else
    push(true)
  end
  status_event('queued', ARGV[5], ARGV[7])
  return {'retry'}
end
finish('failed', ARGV[5], ARGV[6], ARGV[7], {'error', ARGV[7]})
redis.call('ZADD', DEAD, now, id)
return {'dead', J.owner}
`)

// scriptCancel cancels a queued or running job; a finished one is returned as it is.
// ARGV: now_ns, ttl_ms.
var scriptCancel = newScript(`
if not load() then return {'notfound'} end
if J.status ~= 'queued' and J.status ~= 'running' then
  return {'finished', redis.call('HGETALL', JOB)}
end
finish('canceled', ARGV[1], ARGV[2])
return {'ok', redis.call('HGETALL', JOB)}
`)

// scriptReclaim takes a job back from a holder that went silent. It is reached two ways: from
// the running ZSET when a lease deadline passed (entry empty), and from XAUTOCLAIM when a stream
// entry sat unacknowledged longer than a lease (entry = its id). A lapsed job goes to the front
// of its priority with the attempt counted, or fails into the dead-letter list when it has used
// its attempts; an entry delivered but never marked running (its reader died in between) is
// queued again as it was; an entry that is no longer the job's is acknowledged and deleted.
// ARGV: id, entry, stream number, now_ms, now_ns, dead_ttl_ms, error JSON.
var scriptReclaim = newScript(`
local id, entry = ARGV[1], ARGV[2]
local now = tonumber(ARGV[4])
local function discard()
  if entry ~= '' then
    local skey = KEYS[7 + tonumber(ARGV[3])]
    redis.call('XACK', skey, GROUP, entry)
    redis.call('XDEL', skey, entry)
  end
end
if not load() then
  discard()
  redis.call('ZREM', RUNNING, id)
  return {'gone'}
end
if entry ~= '' and J.entry ~= entry then
  discard()
  return {'stale'}
end
local st = J.status
if st == 'queued' and entry ~= '' then
  ack_entry()
  push(true)
  return {'redelivered'}
end
if st ~= 'running' then
  redis.call('ZREM', RUNNING, id)
  return {'none'}
end
if num(J.lease_until) > now then return {'none'} end
if num(J.attempts) >= num(J.max_attempts) then
  finish('failed', ARGV[5], ARGV[6], ARGV[7], {'error', ARGV[7]})
  redis.call('ZADD', DEAD, now, id)
  return {'dead', J.owner}
end
ack_entry()
push(true)
mark_queued(now)
status_event('queued', ARGV[5])
return {'requeued'}
`)

// scriptExpire expires a queued job whose deadline passed.
// ARGV: id, now_ms, now_ns, ttl_ms.
var scriptExpire = newScript(`
local id = ARGV[1]
if not load() or J.status ~= 'queued' then
  redis.call('ZREM', DEADLINES, id)
  return {'none'}
end
local d = num(J.deadline_ms)
if d == 0 or d > tonumber(ARGV[2]) then return {'none'} end
finish('expired', ARGV[3], ARGV[4])
return {'expired', J.owner}
`)

// scriptPromote puts a retry whose backoff is over back at the front of its priority.
// ARGV: id, now_ms.
var scriptPromote = newScript(`
local id = ARGV[1]
if not load() or J.status ~= 'queued' then
  redis.call('ZREM', SCHED, id)
  return {'none'}
end
local due = redis.call('ZSCORE', SCHED, id)
if not due or tonumber(due) > tonumber(ARGV[2]) then return {'none'} end
redis.call('ZREM', SCHED, id)
push(true)
return {'ok'}
`)

// scriptRequeue takes a job out of the dead-letter list and queues it again at the back of its
// priority, with its attempts reset and its keys kept for good again.
// ARGV: id, now_ms, now_ns.
var scriptRequeue = newScript(`
local id = ARGV[1]
if not redis.call('ZSCORE', DEAD, id) then return {'notfound'} end
redis.call('ZREM', DEAD, id)
if not load() or J.status ~= 'failed' then return {'notfound'} end
redis.call('HSET', JOB, 'attempts', 0, 'finished_at', '')
redis.call('HDEL', JOB, 'error', 'result')
redis.call('PERSIST', JOB)
redis.call('PERSIST', EV)
local ik = J.idem_key
if ik and ik ~= '' then redis.call('PERSIST', ik) end
push(false)
mark_queued(tonumber(ARGV[2]))
status_event('queued', ARGV[3])
return {'ok', redis.call('HGETALL', JOB)}
`)

// scriptDiscard deletes a job that Enqueue stored under an id another model's live job holds
// (which the enqueue script cannot see: the index is outside the model's slot). Whoever may
// have reserved it meanwhile finds its lease lost.
// ARGV: id.
var scriptDiscard = newScript(`
if not load() then return {'gone'} end
ack_entry()
for _, z in ipairs({QUEUED, RUNNING, SCHED, DEADLINES}) do redis.call('ZREM', z, ARGV[1]) end
local ik = J.idem_key
if ik and ik ~= '' and redis.call('GET', ik) == ARGV[1] then redis.call('DEL', ik) end
redis.call('DEL', JOB, EV)
return {'ok'}
`)

// scriptAppendEvent adds a worker's event to a job's log if its lease still holds.
// ARGV: worker, attempt, entry, now_ms, type, data, time_ns.
var scriptAppendEvent = newScript(`
local f = fence(ARGV[1], ARGV[2], ARGV[3], tonumber(ARGV[4]))
if f then return {f} end
return {'ok', redis.call('XADD', EV, '*', 'type', ARGV[5], 'data', ARGV[6], 'time', ARGV[7])}
`)

// scriptPeek returns, for each stream in KEYS, the ids of up to ARGV[1] entries not yet
// delivered to the group — what XREADGROUP '>' would hand out next — without delivering them,
// so Reserve can pick across several models in priority and FIFO order before it reads.
var scriptPeek = redis.NewScript(`
local out = {}
for i = 1, #KEYS do
  local ids = {}
  if redis.call('EXISTS', KEYS[i]) == 1 then
    local last
    for _, g in ipairs(redis.call('XINFO', 'GROUPS', KEYS[i])) do
      local name, ld
      for j = 1, #g, 2 do
        if g[j] == 'name' then name = g[j + 1] elseif g[j] == 'last-delivered-id' then ld = g[j + 1] end
      end
      if name == 'workers' then last = ld end
    end
    if last then
      for _, e in ipairs(redis.call('XRANGE', KEYS[i], '(' .. last, '+', 'COUNT', ARGV[1])) do
        ids[#ids + 1] = e[1]
      end
    end
  end
  out[i] = ids
end
return out
`)

// scriptPruneConsumers deletes a stream's consumers that hold no pending entries and have been
// idle longer than ARGV[1] ms: checked and deleted in one step, so a consumer with pending
// entries is never deleted (that would orphan them).
var scriptPruneConsumers = redis.NewScript(`
if redis.call('EXISTS', KEYS[1]) == 0 then return 0 end
local n = 0
for _, c in ipairs(redis.call('XINFO', 'CONSUMERS', KEYS[1], 'workers')) do
  local name, pending, idle
  for j = 1, #c, 2 do
    if c[j] == 'name' then name = c[j + 1]
    elseif c[j] == 'pending' then pending = c[j + 1]
    elseif c[j] == 'idle' then idle = c[j + 1] end
  end
  if pending == 0 and idle > tonumber(ARGV[1]) then
    redis.call('XGROUP', 'DELCONSUMER', KEYS[1], 'workers', name)
    n = n + 1
  end
end
return n
`)

// Worker registry scripts, over KEYS[1] = workers ZSET and KEYS[2] = the worker's JSON.

// scriptRegisterWorker stores a worker and its heartbeat. ARGV: id, now_ms, JSON.
var scriptRegisterWorker = redis.NewScript(`
redis.call('SET', KEYS[2], ARGV[3])
redis.call('ZADD', KEYS[1], ARGV[2], ARGV[1])
return 1
`)

// scriptHeartbeatWorker renews a worker's heartbeat, or forgets it (returning 0) when it is
// missing or its last heartbeat is older than the TTL. ARGV: id, now_ms, ttl_ms.
var scriptHeartbeatWorker = redis.NewScript(`
local last = redis.call('ZSCORE', KEYS[1], ARGV[1])
local now = tonumber(ARGV[2])
if not last or tonumber(last) <= now - tonumber(ARGV[3]) or redis.call('EXISTS', KEYS[2]) == 0 then
  redis.call('ZREM', KEYS[1], ARGV[1])
  redis.call('DEL', KEYS[2])
  return 0
end
redis.call('ZADD', KEYS[1], now, ARGV[1])
return 1
`)

// scriptForgetWorker removes a worker if its heartbeat is still older than ARGV[2] ms (it did
// not come back in between). ARGV: id, cutoff_ms.
var scriptForgetWorker = redis.NewScript(`
local last = redis.call('ZSCORE', KEYS[1], ARGV[1])
if last and tonumber(last) > tonumber(ARGV[2]) then return 0 end
redis.call('ZREM', KEYS[1], ARGV[1])
redis.call('DEL', KEYS[2])
return 1
`)

// scriptLock takes or renews the maintenance lock KEYS[1] for holder ARGV[1], for ARGV[2] ms.
var scriptLock = redis.NewScript(`
local cur = redis.call('GET', KEYS[1])
if cur and cur ~= ARGV[1] then return 0 end
redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])
return 1
`)

// scriptUnlock gives the maintenance lock KEYS[1] up if holder ARGV[1] has it.
var scriptUnlock = redis.NewScript(`
if redis.call('GET', KEYS[1]) == ARGV[1] then redis.call('DEL', KEYS[1]) end
return 1
`)

// allScripts are loaded at New, so pipelined EVALSHAs find them.
var allScripts = []*redis.Script{
	scriptEnqueue, scriptMarkRunning, scriptReserve, scriptExtend, scriptRelease, scriptComplete, scriptFail,
	scriptCancel, scriptDiscard, scriptReclaim, scriptExpire, scriptPromote, scriptRequeue, scriptAppendEvent,
	scriptPeek, scriptPruneConsumers, scriptRegisterWorker, scriptHeartbeatWorker, scriptForgetWorker,
	scriptLock, scriptUnlock,
}
