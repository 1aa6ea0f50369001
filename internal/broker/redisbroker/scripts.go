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

// luaPrelude holds the helpers every per-job script shares.
const luaPrelude = `
local GROUP = 'workers'
local JOB, EV, QUEUED, RUNNING, SCHED, DEADLINES, DEAD = KEYS[1], KEYS[2], KEYS[3], KEYS[4], KEYS[5], KEYS[6], KEYS[7]

local function int(x) return string.format('%d', x) end
local function hget(f) return redis.call('HGET', JOB, f) end
local function hnum(f) return tonumber(redis.call('HGET', JOB, f) or '') or 0 end

-- ensure_stream creates a queue stream with its group before its first entry.
local function ensure_stream(key)
  if redis.call('EXISTS', key) == 0 then
    redis.call('XGROUP', 'CREATE', key, GROUP, '0', 'MKSTREAM')
  end
end

-- status_event appends the broker's status event to the job's log; err is JSON or nil.
local function status_event(status, now_ns, err)
  local data = '{"status":"' .. status .. '"'
  if err and err ~= '' then data = data .. ',"error":' .. err end
  data = data .. '}'
  return redis.call('XADD', EV, '*', 'type', 'status', 'data', data, 'time', now_ns)
end

-- drop_entry acknowledges and deletes the job's queue entry, if it has one, so streams hold
-- only live entries and never need trimming.
local function drop_entry()
  local e = hget('entry')
  local s = tonumber(hget('stream') or '')
  if e and e ~= '' and s then
    local key = KEYS[7 + s]
    redis.call('XACK', key, GROUP, e)
    redis.call('XDEL', key, e)
  end
  redis.call('HSET', JOB, 'entry', '', 'stream', '')
end

-- push adds the job's queue entry: at the front of its priority or at the back.
local function push(front)
  local s = hnum('prank') * 2 + 2
  if front then s = s - 1 end
  local key = KEYS[7 + s]
  ensure_stream(key)
  local e = redis.call('XADD', key, '*', 'job', hget('id'))
  redis.call('HSET', JOB, 'entry', e, 'stream', s)
  return e
end

-- mark_queued records the job as queued (the entry is pushed, or scheduled, by the caller).
local function mark_queued(now_ms)
  local id = hget('id')
  redis.call('HSET', JOB, 'status', 'queued', 'queued_at', int(now_ms), 'lease_until', '')
  redis.call('ZADD', QUEUED, now_ms, id)
  redis.call('ZREM', RUNNING, id)
  local d = hnum('deadline_ms')
  if d > 0 then redis.call('ZADD', DEADLINES, d, id) end
end

-- expire_keys makes the job, its events and its idempotency key disappear after ttl ms.
local function expire_keys(ttl)
  redis.call('PEXPIRE', JOB, ttl)
  redis.call('PEXPIRE', EV, ttl)
  local ik = hget('idem_key')
  if ik and ik ~= '' then redis.call('PEXPIRE', ik, ttl) end
end

-- finish moves the job to a terminal status, exactly once, with its status event.
local function finish(status, now_ns, ttl, err)
  local id = hget('id')
  drop_entry()
  redis.call('ZREM', QUEUED, id)
  redis.call('ZREM', RUNNING, id)
  redis.call('ZREM', SCHED, id)
  redis.call('ZREM', DEADLINES, id)
  redis.call('HSET', JOB, 'status', status, 'finished_at', now_ns, 'lease_until', '')
  status_event(status, now_ns, err)
  expire_keys(ttl)
end

-- fence checks that a lease still holds the job: nil when it does, else the error code.
local function fence(worker, attempt, entry, now_ms)
  local st = hget('status')
  if not st then return 'lost' end
  if st == 'canceled' then return 'canceled' end
  if st ~= 'running' or hget('worker') ~= worker or hget('attempts') ~= attempt
    or hget('entry') ~= entry or hnum('lease_until') <= now_ms then
    return 'lost'
  end
  return nil
end
`

func newScript(body string) *redis.Script { return redis.NewScript(luaPrelude + body) }

// scriptEnqueue stores a new job and queues it: idempotency check, duplicate id check, queue cap,
// job hash, stream entry, queued status event.
// ARGV: now_ms, now_ns, cap, id, then the job hash's field/value pairs.
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
redis.call('HSET', JOB, unpack(ARGV, 5))
if idem then
  redis.call('SET', idem, ARGV[4])
  redis.call('HSET', JOB, 'idem_key', idem)
end
push(false)
mark_queued(now)
status_event('queued', ARGV[2])
return {'ok'}
`)

// scriptMarkRunning takes a job whose stream entry was just delivered to a worker. An entry
// that is no longer the job's (canceled, expired, handed back) is acknowledged and deleted; a
// job past its deadline expires.
// ARGV: entry id, stream number, worker, now_ms, now_ns, lease_ms, ttl_ms.
var scriptMarkRunning = newScript(`
local entry, skey = ARGV[1], KEYS[7 + tonumber(ARGV[2])]
local now = tonumber(ARGV[4])
if redis.call('EXISTS', JOB) == 0 or hget('status') ~= 'queued' or hget('entry') ~= entry then
  redis.call('XACK', skey, GROUP, entry)
  redis.call('XDEL', skey, entry)
  return {'skip'}
end
local d = hnum('deadline_ms')
if d > 0 and now >= d then
  finish('expired', ARGV[5], ARGV[7])
  return {'expired', hget('owner')}
end
local id = hget('id')
local lease_until = now + tonumber(ARGV[6])
redis.call('HINCRBY', JOB, 'attempts', 1)
redis.call('HSET', JOB, 'status', 'running', 'worker', ARGV[3], 'started_at', ARGV[5], 'lease_until', int(lease_until))
redis.call('ZREM', QUEUED, id)
redis.call('ZREM', DEADLINES, id)
redis.call('ZADD', RUNNING, lease_until, id)
status_event('running', ARGV[5])
return {'ok', redis.call('HGETALL', JOB)}
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
redis.call('ZADD', RUNNING, lease_until, hget('id'))
redis.call('XCLAIM', KEYS[7 + hnum('stream')], GROUP, ARGV[1], 0, ARGV[3], 'JUSTID')
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
drop_entry()
push(true)
mark_queued(now)
status_event('queued', ARGV[5])
return {'ok'}
`)

// scriptComplete finishes a job with its result.
// ARGV: worker, attempt, entry, now_ms, now_ns, ttl_ms, result.
var scriptComplete = newScript(`
local f = fence(ARGV[1], ARGV[2], ARGV[3], tonumber(ARGV[4]))
if f then return {f} end
redis.call('HSET', JOB, 'result', ARGV[7])
finish('succeeded', ARGV[5], ARGV[6])
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
local id = hget('id')
redis.call('HSET', JOB, 'error', ARGV[7])
if ARGV[8] == '1' and hnum('attempts') < hnum('max_attempts') then
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
finish('failed', ARGV[5], ARGV[6], ARGV[7])
redis.call('ZADD', DEAD, now, id)
return {'dead', hget('owner')}
`)

// scriptCancel cancels a queued or running job; a finished one is returned as it is.
// ARGV: now_ns, ttl_ms.
var scriptCancel = newScript(`
if redis.call('EXISTS', JOB) == 0 then return {'notfound'} end
local st = hget('status')
if st ~= 'queued' and st ~= 'running' then
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
if redis.call('EXISTS', JOB) == 0 then
  discard()
  redis.call('ZREM', RUNNING, id)
  return {'gone'}
end
if entry ~= '' and hget('entry') ~= entry then
  discard()
  return {'stale'}
end
local st = hget('status')
if st == 'queued' and entry ~= '' then
  drop_entry()
  push(true)
  return {'redelivered'}
end
if st ~= 'running' then
  redis.call('ZREM', RUNNING, id)
  return {'none'}
end
if hnum('lease_until') > now then return {'none'} end
if hnum('attempts') >= hnum('max_attempts') then
  redis.call('HSET', JOB, 'error', ARGV[7])
  finish('failed', ARGV[5], ARGV[6], ARGV[7])
  redis.call('ZADD', DEAD, now, id)
  return {'dead', hget('owner')}
end
drop_entry()
push(true)
mark_queued(now)
status_event('queued', ARGV[5])
return {'requeued'}
`)

// scriptExpire expires a queued job whose deadline passed.
// ARGV: id, now_ms, now_ns, ttl_ms.
var scriptExpire = newScript(`
local id = ARGV[1]
if redis.call('EXISTS', JOB) == 0 or hget('status') ~= 'queued' then
  redis.call('ZREM', DEADLINES, id)
  return {'none'}
end
local d = hnum('deadline_ms')
if d == 0 or d > tonumber(ARGV[2]) then return {'none'} end
finish('expired', ARGV[3], ARGV[4])
return {'expired', hget('owner')}
`)

// scriptPromote puts a retry whose backoff is over back at the front of its priority.
// ARGV: id, now_ms.
var scriptPromote = newScript(`
local id = ARGV[1]
if redis.call('EXISTS', JOB) == 0 or hget('status') ~= 'queued' then
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
if redis.call('EXISTS', JOB) == 0 or hget('status') ~= 'failed' then return {'notfound'} end
redis.call('HSET', JOB, 'attempts', 0, 'finished_at', '')
redis.call('HDEL', JOB, 'error', 'result')
redis.call('PERSIST', JOB)
redis.call('PERSIST', EV)
local ik = hget('idem_key')
if ik and ik ~= '' then redis.call('PERSIST', ik) end
push(false)
mark_queued(tonumber(ARGV[2]))
status_event('queued', ARGV[3])
return {'ok', redis.call('HGETALL', JOB)}
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
	scriptEnqueue, scriptMarkRunning, scriptExtend, scriptRelease, scriptComplete, scriptFail,
	scriptCancel, scriptReclaim, scriptExpire, scriptPromote, scriptRequeue, scriptAppendEvent,
	scriptPeek, scriptPruneConsumers, scriptRegisterWorker, scriptHeartbeatWorker, scriptForgetWorker,
	scriptLock, scriptUnlock,
}
