"""The Lua scripts behind every state change, so each one is atomic on the server.

Key layout under a prefix ``P`` (which has no ``:``, so prefixes never overlap)
and a queue ``Q`` (braced, since queue names may contain ``:``)::

    P:queues            set of queue names holding at least one message
    P:seq               counter giving each message its put order
    P:q:{Q}:m:<id>      hash: one message
    P:q:{Q}:ready       zset: available messages; score -priority, member
                        <available_at in us, 17 digits><seq, 15 digits><id>,
                        so equal scores fall back to time then put order
    P:q:{Q}:delayed     zset: ready messages not yet due, scored by due time
    P:q:{Q}:leased      zset: running leases, scored by lease end
    P:q:{Q}:dead        zset: dead letters, scored by failure time
    P:q:{Q}:dedup       hash: dedup key -> message id
    P:q:{Q}:notify      list: wake-up tokens for blocked ``wait`` calls
    P:attempt:<key>     hash: one retry record

Message hash fields: ``id``, ``p`` payload, ``c`` codec, ``a`` attempts,
``ca`` created at, ``aa`` available at (the lease end while leased), ``pr``
priority, ``st`` state (``r`` ready, ``i`` leased, ``d`` dead), ``k`` put
sequence, ``tok`` lease token, ``lb`` leased by, ``le`` last error, ``fa``
failed at, ``dk`` dedup key, ``rm`` member in the ready set.

Every script takes the time as its first argument: the injected clock's
reading, or ``''`` to use the server's ``TIME`` (so hosts with skewed clocks
agree). Numbers cross into Redis as ``%.17g`` strings: Lua's own conversion
keeps only 14 digits, which would round timestamps.

Due delayed messages and expired leases move into the ready set lazily, in the
same script that leases or peeks, so nothing has to run in the background.
"""

from __future__ import annotations

__all__ = ["ATTEMPT_SCRIPTS", "QUEUE_SCRIPTS"]

_COMMON = r"""
local function now_from(arg)
  if arg ~= '' then return tonumber(arg) end
  local t = redis.call('TIME')
  return tonumber(t[1]) + tonumber(t[2]) / 1000000
end

local function fmt(x) return string.format('%.17g', x) end

local function ready_member(avail, seq, id)
  local us = math.max(0, math.floor(avail * 1000000 + 0.5))
  return string.format('%017d', us) .. seq .. id
end

-- Put a non-dead message into the index its state and due time call for.
local function schedule(qb, id, st, avail, prio, seq, now)
  local key = qb .. 'm:' .. id
  if avail <= now then
    local rm = ready_member(avail, seq, id)
    redis.call('ZADD', qb .. 'ready', fmt(-prio), rm)
    redis.call('HSET', key, 'rm', rm)
  elseif st == 'i' then
    redis.call('ZADD', qb .. 'leased', fmt(avail), id)
  else
    redis.call('ZADD', qb .. 'delayed', fmt(avail), id)
  end
end

-- Take a message out of every index (it is in exactly one).
local function unindex(qb, id, rm, seq)
  if rm then
    redis.call('ZREM', qb .. 'ready', rm)
    redis.call('HDEL', qb .. 'm:' .. id, 'rm')
  end
  redis.call('ZREM', qb .. 'delayed', id)
  redis.call('ZREM', qb .. 'leased', id)
  if seq then redis.call('ZREM', qb .. 'dead', seq .. id) end
end

-- Move due delayed messages and expired leases into the ready set.
local function promote(qb, now)
  for _, zname in ipairs({'delayed', 'leased'}) do
    local zkey = qb .. zname
    local due = redis.call('ZRANGEBYSCORE', zkey, '-inf', fmt(now))
    for _, id in ipairs(due) do
      redis.call('ZREM', zkey, id)
      local h = redis.call('HMGET', qb .. 'm:' .. id, 'aa', 'pr', 'k')
      if h[1] then
        local rm = ready_member(tonumber(h[1]), h[3], id)
        redis.call('ZADD', qb .. 'ready', fmt(-tonumber(h[2])), rm)
        redis.call('HSET', qb .. 'm:' .. id, 'rm', rm)
      end
    end
  end
end

-- Delete a message and its dedup entry.
local function remove(qb, id)
  local key = qb .. 'm:' .. id
  local h = redis.call('HMGET', key, 'rm', 'k', 'dk')
  if not h[2] then return 0 end
  unindex(qb, id, h[1], h[2])
  if h[3] then redis.call('HDEL', qb .. 'dedup', h[3]) end
  redis.call('DEL', key)
  return 1
end

local function forget_if_empty(qb, gb, queue)
  local total = redis.call('ZCARD', qb .. 'ready') + redis.call('ZCARD', qb .. 'delayed')
    + redis.call('ZCARD', qb .. 'leased') + redis.call('ZCARD', qb .. 'dead')
  if total == 0 then
    redis.call('SREM', gb .. 'queues', queue)
    redis.call('DEL', qb .. 'dedup')
  end
end

-- Wake blocked waiters; the list is capped and expires, so stale tokens only
-- cause a bounded number of early (allowed) returns.
local function notify(qb, n)
  local key = qb .. 'notify'
  for _ = 1, math.min(n, 64) do redis.call('RPUSH', key, '1') end
  redis.call('LTRIM', key, -64, -1)
  redis.call('PEXPIRE', key, 60000)
end

-- A lease token argument: '-' for none (the operator's override), 't<token>' otherwise.
local function holds(tok, arg)
  return arg == '-' or (tok ~= false and tok ~= nil and ('t' .. tok) == arg)
end
"""

# ARGV: now, qb, gb, queue, codec, delay, priority, dedup_key or '', n, ids..., payloads...,
# max_size or ''. Returns {created_at, existing message hash or false}, or, when the
# batch does not fit under max_size, {now, false, unfinished count} and stores nothing.
_PUT = r"""
local now = now_from(ARGV[1])
local qb, gb, queue, codec = ARGV[2], ARGV[3], ARGV[4], ARGV[5]
local delay, prio, dk, n = tonumber(ARGV[6]), tonumber(ARGV[7]), ARGV[8], tonumber(ARGV[9])
if dk ~= '' then
  local existing = redis.call('HGET', qb .. 'dedup', dk)
  if existing and redis.call('EXISTS', qb .. 'm:' .. existing) == 1 then
    return {fmt(now), redis.call('HGETALL', qb .. 'm:' .. existing)}
  end
end
if n == 0 then return {fmt(now), false} end
-- The ids come from the client, so a call retried after a dropped reply finds
-- its batch already stored and does not store it twice.
local first = redis.call('HGET', qb .. 'm:' .. ARGV[10], 'ca')
if first then return {first, false} end
local cap = tonumber(ARGV[10 + 2 * n])
if cap then
  local unfinished = redis.call('ZCARD', qb .. 'ready') + redis.call('ZCARD', qb .. 'delayed')
    + redis.call('ZCARD', qb .. 'leased')
  if unfinished + n > cap then return {fmt(now), false, unfinished} end
end
local avail = now + delay
for i = 1, n do
  local id = ARGV[9 + i]
  local key = qb .. 'm:' .. id
  local seq = string.format('%015d', redis.call('INCR', gb .. 'seq'))
  redis.call('HSET', key, 'id', id, 'p', ARGV[9 + n + i], 'c', codec, 'a', '0',
    'ca', fmt(now), 'aa', fmt(avail), 'pr', ARGV[7], 'st', 'r', 'k', seq)
  if dk ~= '' then
    redis.call('HSET', key, 'dk', dk)
    redis.call('HSET', qb .. 'dedup', dk, id)
  end
  schedule(qb, id, 'r', avail, prio, seq, now)
end
redis.call('SADD', gb .. 'queues', queue)
notify(qb, n)
return {fmt(now), false}
"""

# ARGV: now, qb, lease_timeout, leased_by or '', limit, token base.
# Returns {now, message hash...}.
_LEASE = r"""
local now = now_from(ARGV[1])
local qb, lb, limit, base = ARGV[2], ARGV[4], tonumber(ARGV[5]), ARGV[6]
local till = fmt(now + tonumber(ARGV[3]))
promote(qb, now)
local out = {fmt(now)}
local members = redis.call('ZRANGE', qb .. 'ready', 0, limit - 1)
for i, rm in ipairs(members) do
  local id = string.sub(rm, 33)
  local key = qb .. 'm:' .. id
  redis.call('ZREM', qb .. 'ready', rm)
  redis.call('HDEL', key, 'rm')
  redis.call('HINCRBY', key, 'a', 1)
  redis.call('HSET', key, 'st', 'i', 'aa', till, 'tok', base .. string.format('%x', i))
  if lb ~= '' then redis.call('HSET', key, 'lb', lb) else redis.call('HDEL', key, 'lb') end
  redis.call('ZADD', qb .. 'leased', till, id)
  out[#out + 1] = redis.call('HGETALL', key)
end
return out
"""

# ARGV: now, qb. Returns '0' when a message is available, the seconds until the
# next one is due, or '-1' when nothing is scheduled. When nothing is available
# the wake-up tokens are stale (a waiter blocked at the time took any fresh
# one), so they are dropped rather than waking this waiter for nothing; a put
# after this script pushes a new token that the coming BLPOP sees.
_NEXT_DUE = r"""
local now = now_from(ARGV[1])
local qb = ARGV[2]
if redis.call('ZCARD', qb .. 'ready') > 0 then return '0' end
local due_now = redis.call('ZCOUNT', qb .. 'delayed', '-inf', fmt(now))
  + redis.call('ZCOUNT', qb .. 'leased', '-inf', fmt(now))
if due_now > 0 then return '0' end
redis.call('DEL', qb .. 'notify')
local best = nil
for _, zname in ipairs({'delayed', 'leased'}) do
  local r = redis.call('ZRANGE', qb .. zname, 0, 0, 'WITHSCORES')
  if r[2] then
    local due = tonumber(r[2])
    if best == nil or due < best then best = due end
  end
end
if best == nil then return '-1' end
return fmt(math.max(0, best - now))
"""

# ARGV: now, qb, gb, queue, then (id, token argument) pairs. Returns how many were deleted.
_ACK = r"""
local qb, gb, queue = ARGV[2], ARGV[3], ARGV[4]
local n = 0
for i = 5, #ARGV, 2 do
  local id = ARGV[i]
  local tok = redis.call('HGET', qb .. 'm:' .. id, 'tok')
  if holds(tok, ARGV[i + 1]) then n = n + remove(qb, id) end
end
if n > 0 then forget_if_empty(qb, gb, queue) end
return n
"""

# ARGV: now, qb, id, token argument, delay, error argument ('-' or 'e<text>').
_RELEASE = r"""
local now = now_from(ARGV[1])
local qb, id = ARGV[2], ARGV[3]
local key = qb .. 'm:' .. id
local h = redis.call('HMGET', key, 'st', 'tok', 'pr', 'k', 'rm')
if not h[1] or h[1] == 'd' or not holds(h[2], ARGV[4]) then return 0 end
unindex(qb, id, h[5], nil)
local avail = now + tonumber(ARGV[5])
redis.call('HSET', key, 'st', 'r', 'aa', fmt(avail))
redis.call('HDEL', key, 'tok')
if ARGV[6] ~= '-' then
  redis.call('HSET', key, 'le', string.sub(ARGV[6], 2), 'fa', fmt(now))
end
schedule(qb, id, 'r', avail, tonumber(h[3]), h[4], now)
notify(qb, 1)
return 1
"""

# ARGV: now, qb, id, token, lease_timeout.
_EXTEND = r"""
local now = now_from(ARGV[1])
local qb, id = ARGV[2], ARGV[3]
local key = qb .. 'm:' .. id
local h = redis.call('HMGET', key, 'st', 'tok', 'rm')
if h[1] ~= 'i' or h[2] ~= ARGV[4] then return 0 end
unindex(qb, id, h[3], nil)
local till = fmt(now + tonumber(ARGV[5]))
redis.call('HSET', key, 'aa', till)
redis.call('ZADD', qb .. 'leased', till, id)
return 1
"""

# ARGV: now, qb, id, token argument, error argument ('-' or 'e<text>').
_DEAD_LETTER = r"""
local now = now_from(ARGV[1])
local qb, id = ARGV[2], ARGV[3]
local key = qb .. 'm:' .. id
local h = redis.call('HMGET', key, 'st', 'tok', 'k', 'rm')
if not h[1] or h[1] == 'd' or not holds(h[2], ARGV[4]) then return 0 end
unindex(qb, id, h[4], nil)
redis.call('HSET', key, 'st', 'd', 'fa', fmt(now))
redis.call('HDEL', key, 'tok')
if ARGV[5] ~= '-' then
  redis.call('HSET', key, 'le', string.sub(ARGV[5], 2))
else
  redis.call('HDEL', key, 'le')
end
redis.call('ZADD', qb .. 'dead', fmt(now), h[3] .. id)
return 1
"""

# ARGV: now, qb, then the ids to requeue; none means every dead letter.
_REQUEUE_DEAD = r"""
local now = now_from(ARGV[1])
local qb = ARGV[2]
local ids = {}
if #ARGV == 2 then
  for _, member in ipairs(redis.call('ZRANGE', qb .. 'dead', 0, -1)) do
    ids[#ids + 1] = string.sub(member, 16)
  end
else
  for i = 3, #ARGV do ids[#ids + 1] = ARGV[i] end
end
local n = 0
for _, id in ipairs(ids) do
  local key = qb .. 'm:' .. id
  local h = redis.call('HMGET', key, 'st', 'pr', 'k')
  if h[1] == 'd' then
    redis.call('ZREM', qb .. 'dead', h[3] .. id)
    redis.call('HSET', key, 'st', 'r', 'a', '0', 'aa', fmt(now))
    schedule(qb, id, 'r', now, tonumber(h[2]), h[3], now)
    n = n + 1
  end
end
if n > 0 then notify(qb, n) end
return n
"""

# ARGV: now, qb, gb, queue, target ('ready', 'dead' or 'all').
_PURGE = r"""
local now = now_from(ARGV[1])
local qb, gb, queue, target = ARGV[2], ARGV[3], ARGV[4], ARGV[5]
local ids = {}
if target == 'dead' or target == 'all' then
  for _, member in ipairs(redis.call('ZRANGE', qb .. 'dead', 0, -1)) do
    ids[#ids + 1] = string.sub(member, 16)
  end
end
if target == 'ready' or target == 'all' then
  for _, member in ipairs(redis.call('ZRANGE', qb .. 'ready', 0, -1)) do
    ids[#ids + 1] = string.sub(member, 33)
  end
  for _, id in ipairs(redis.call('ZRANGE', qb .. 'delayed', 0, -1)) do ids[#ids + 1] = id end
  local leased_max = '+inf'
  if target == 'ready' then leased_max = fmt(now) end
  for _, id in ipairs(redis.call('ZRANGEBYSCORE', qb .. 'leased', '-inf', leased_max)) do
    ids[#ids + 1] = id
  end
end
local n = 0
for _, id in ipairs(ids) do n = n + remove(qb, id) end
if n > 0 then forget_if_empty(qb, gb, queue) end
return n
"""

# ARGV: now, qb. Returns {now, message hash or false}.
_PEEK = r"""
local now = now_from(ARGV[1])
local qb = ARGV[2]
promote(qb, now)
local first = redis.call('ZRANGE', qb .. 'ready', 0, 0)
if not first[1] then return {fmt(now), false} end
return {fmt(now), redis.call('HGETALL', qb .. 'm:' .. string.sub(first[1], 33))}
"""

# ARGV: now, qb, id. Returns {now, message hash (empty when unknown)}.
_INSPECT = r"""
local now = now_from(ARGV[1])
return {fmt(now), redis.call('HGETALL', ARGV[2] .. 'm:' .. ARGV[3])}
"""

# ARGV: now, qb, limit (-1 for all). Returns {now, message hash...}, oldest failure first.
_DEAD_LETTERS = r"""
local now = now_from(ARGV[1])
local qb = ARGV[2]
local out = {fmt(now)}
for _, member in ipairs(redis.call('ZRANGE', qb .. 'dead', 0, tonumber(ARGV[3]))) do
  out[#out + 1] = redis.call('HGETALL', qb .. 'm:' .. string.sub(member, 16))
end
return out
"""

# ARGV: now, qb. Returns {ready, delayed, inflight, dead}.
_STATS = r"""
local now = fmt(now_from(ARGV[1]))
local qb = ARGV[2]
local due_delayed = redis.call('ZCOUNT', qb .. 'delayed', '-inf', now)
local due_leased = redis.call('ZCOUNT', qb .. 'leased', '-inf', now)
return {
  redis.call('ZCARD', qb .. 'ready') + due_delayed + due_leased,
  redis.call('ZCARD', qb .. 'delayed') - due_delayed,
  redis.call('ZCARD', qb .. 'leased') - due_leased,
  redis.call('ZCARD', qb .. 'dead'),
}
"""

QUEUE_SCRIPTS: dict[str, str] = {
    name: _COMMON + body
    for name, body in {
        "put": _PUT,
        "lease": _LEASE,
        "next_due": _NEXT_DUE,
        "ack": _ACK,
        "release": _RELEASE,
        "extend": _EXTEND,
        "dead_letter": _DEAD_LETTER,
        "requeue_dead": _REQUEUE_DEAD,
        "purge": _PURGE,
        "peek": _PEEK,
        "inspect": _INSPECT,
        "dead_letters": _DEAD_LETTERS,
        "stats": _STATS,
    }.items()
}
"""Queue-store scripts by name, each with the shared helpers prepended."""

# ARGV: now, key. Returns the record's hash after counting one more attempt.
_BEGIN_ATTEMPT = r"""
local now = fmt(now_from(ARGV[1]))
local key = ARGV[2]
if redis.call('HINCRBY', key, 'n', 1) == 1 then redis.call('HSET', key, 'first', now) end
redis.call('HSET', key, 'last', now)
return redis.call('HGETALL', key)
"""

# ARGV: now, key, error argument ('-' or 'e<text>'), exhausted ('1' or '0').
# Returns the record's hash, or false when the key has no record.
_RECORD_FAILURE = r"""
local key = ARGV[2]
if redis.call('EXISTS', key) == 0 then return false end
if ARGV[3] ~= '-' then
  redis.call('HSET', key, 'err', string.sub(ARGV[3], 2))
else
  redis.call('HDEL', key, 'err')
end
if ARGV[4] == '1' then redis.call('HSET', key, 'x', '1') end
return redis.call('HGETALL', key)
"""

ATTEMPT_SCRIPTS: dict[str, str] = {
    "begin_attempt": _COMMON + _BEGIN_ATTEMPT,
    "record_failure": _COMMON + _RECORD_FAILURE,
}
"""Attempt-store scripts by name, each with the shared helpers prepended."""
