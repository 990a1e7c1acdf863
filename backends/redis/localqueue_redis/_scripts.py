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

Redis does not roll a script back when it fails part-way, so every script reads
and checks the record it changes (``read_record``) before its first write. A
damaged record is dead-lettered in the same script (``quarantine``), a missing
one's index entries dropped, and both are returned as damage events (id, what
was wrong) for the client to log; a lease then goes on to the next message.
"""

from __future__ import annotations

import redis
from redis.commands.core import Script

__all__ = ["ATTEMPT_SCRIPTS", "QUEUE_SCRIPTS", "error_arg", "register", "token_arg"]


def register(client: redis.Redis, sources: dict[str, str]) -> dict[str, Script]:
    """The scripts ``sources`` names, registered with ``client`` (loaded on first call)."""
    return {name: client.register_script(source) for name, source in sources.items()}


def token_arg(token: str | None) -> str:
    """A lease token as scripts take it."""
    # '-' is the operator's override; a real token is prefixed so '' stays a token.
    return "-" if token is None else "t" + token


def error_arg(error: str | None) -> str:
    """An error text (or none) as scripts take it."""
    return "-" if error is None else "e" + error


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

-- Damage found by any script, reported to the client: pairs of id and what
-- was wrong ('missing' when only index entries were left).
local events = {}

local FIELDS = {'id', 'p', 'c', 'a', 'ca', 'aa', 'pr', 'st', 'k',
  'lb', 'tok', 'le', 'dk', 'fa', 'rm'}

-- A field's value as a reason may quote it: short printable ASCII only.
local function shown(v)
  if not v then return 'missing' end
  if #v <= 40 and not string.find(v, '[^%w%p ]') then return "'" .. v .. "'" end
  return 'unreadable bytes'
end

-- Well-formed UTF-8 without surrogates, exactly what the client's decode accepts.
local function utf8_ok(s)
  if not string.find(s, '[\128-\255]') then return true end
  local i, n = 1, #s
  while i <= n do
    local c = string.byte(s, i)
    local len = 0
    if c < 128 then len = 1
    elseif string.find(s, '^[\194-\223][\128-\191]', i) then len = 2
    elseif string.find(s, '^\224[\160-\191][\128-\191]', i)
      or string.find(s, '^[\225-\236\238\239][\128-\191][\128-\191]', i)
      or string.find(s, '^\237[\128-\159][\128-\191]', i) then len = 3
    elseif string.find(s, '^\240[\144-\191][\128-\191][\128-\191]', i)
      or string.find(s, '^[\241-\243][\128-\191][\128-\191][\128-\191]', i)
      or string.find(s, '^\244[\128-\143][\128-\191][\128-\191]', i) then len = 4
    else return false end
    i = i + len
  end
  return true
end

local function is_int(v) return v and #v <= 20 and string.find(v, '^-?%d+$') ~= nil end
local function is_num(v)
  return v and #v <= 40 and (string.find(v, '^-?%d+%.?%d*$')
    or string.find(v, '^-?%d+%.?%d*[eE][-+]?%d+$')) ~= nil
end
local function is_count(v) return is_int(v) and string.sub(v, 1, 1) ~= '-' end
local function is_seq(v) return v and #v == 15 and not string.find(v, '%D') end
local function is_codec(v) return v and v ~= '' and utf8_ok(v) end

-- Read a message record and check every field the client decodes, so no
-- script does arithmetic on, and no client fails to decode, a bad value.
-- Returns the fields by name (nil when the record is gone) and the problems
-- found (empty when it is sound).
local function read_record(qb, id)
  local key = qb .. 'm:' .. id
  if redis.call('EXISTS', key) == 0 then return nil, {} end
  local raw = redis.call('HMGET', key, unpack(FIELDS))
  local h = {}
  for i, name in ipairs(FIELDS) do h[name] = raw[i] end
  local bad = {}
  local function want(ok, field, what)
    if not ok then bad[#bad + 1] = field .. ' is ' .. shown(h[field]) .. ' (' .. what .. ')' end
  end
  want(h.id == id, 'id', 'not the id ' .. id .. ' of its key')
  want(h.p, 'p', 'the payload')
  want(is_codec(h.c), 'c', 'the codec name, not UTF-8 text')
  want(is_count(h.a), 'a', 'attempts, not a count')
  want(is_num(h.ca), 'ca', 'created-at, not a number')
  want(is_num(h.aa), 'aa', 'available-at, not a number')
  want(is_int(h.pr), 'pr', 'priority, not an integer')
  want(h.st == 'r' or h.st == 'i' or h.st == 'd', 'st', 'state, not r, i or d')
  want(is_seq(h.k), 'k', 'put sequence, not 15 digits')
  for _, f in ipairs({'lb', 'tok', 'le', 'dk'}) do
    want(not h[f] or utf8_ok(h[f]), f, 'not UTF-8 text')
  end
  want(not h.fa or is_num(h.fa), 'fa', 'failed-at, not a number')
  return h, bad
end

-- Move a damaged record to the dead letters in one step: out of every index
-- its fields name, its bad fields replaced by neutral values so it reads back
-- and can be requeued, the reason in ``le``. Every value it writes was checked
-- or made here, so it cannot fail half-way.
local function quarantine(qb, id, h, bad, now, also)
  local key = qb .. 'm:' .. id
  if h.rm then redis.call('ZREM', qb .. 'ready', h.rm) end
  redis.call('ZREM', qb .. 'delayed', id)
  redis.call('ZREM', qb .. 'leased', id)
  if h.k then redis.call('ZREM', qb .. 'dead', h.k .. id) end
  local reason = 'damaged record: ' .. table.concat(bad, '; ')
  if also then reason = reason .. '; ' .. also end
  if h.le and utf8_ok(h.le) then reason = reason .. '; last error before: ' .. h.le end
  local fix = {'st', 'd', 'fa', fmt(now), 'le', reason}
  local function set(ok, field, value)
    if not ok then fix[#fix + 1] = field; fix[#fix + 1] = value end
  end
  set(h.id == id, 'id', id)
  set(h.p, 'p', '')
  set(is_codec(h.c), 'c', 'unknown')
  set(is_count(h.a), 'a', '0')
  set(is_num(h.ca), 'ca', fmt(now))
  set(is_num(h.aa), 'aa', fmt(now))
  set(is_int(h.pr), 'pr', '0')
  local seq = h.k
  if not is_seq(seq) then
    seq = '000000000000000'
    fix[#fix + 1] = 'k'; fix[#fix + 1] = seq
  end
  redis.call('HDEL', key, 'rm', 'tok')
  for _, f in ipairs({'lb', 'dk'}) do
    if h[f] and not utf8_ok(h[f]) then redis.call('HDEL', key, f) end
  end
  redis.call('HSET', key, unpack(fix))
  redis.call('ZADD', qb .. 'dead', fmt(now), seq .. id)
  events[#events + 1] = id
  events[#events + 1] = reason
end

-- Forget index entries left by a record that is gone.
local function drop_missing(qb, id, rm)
  if rm then redis.call('ZREM', qb .. 'ready', rm) end
  redis.call('ZREM', qb .. 'delayed', id)
  redis.call('ZREM', qb .. 'leased', id)
  events[#events + 1] = id
  events[#events + 1] = 'missing'
end

-- Whether the message under ready-set member ``rm`` can be used; a damaged
-- one is moved to the dead letters, a missing one's entries dropped.
local function usable(qb, id, rm, now)
  local h, bad = read_record(qb, id)
  if h == nil then
    drop_missing(qb, id, rm)
    return nil
  end
  if #bad > 0 then
    redis.call('ZREM', qb .. 'ready', rm)
    quarantine(qb, id, h, bad, now)
    return nil
  end
  return h
end

-- Move due delayed messages and expired leases into the ready set.
local function promote(qb, now)
  for _, zname in ipairs({'delayed', 'leased'}) do
    local zkey = qb .. zname
    local due = redis.call('ZRANGEBYSCORE', zkey, '-inf', fmt(now))
    for _, id in ipairs(due) do
      local h, bad = read_record(qb, id)
      if h == nil then
        drop_missing(qb, id, nil)
      elseif #bad > 0 then
        quarantine(qb, id, h, bad, now)
      else
        redis.call('ZREM', zkey, id)
        local rm = ready_member(tonumber(h.aa), h.k, id)
        redis.call('ZADD', qb .. 'ready', fmt(-tonumber(h.pr)), rm)
        redis.call('HSET', qb .. 'm:' .. id, 'rm', rm)
      end
    end
  end
end

-- Delete a message and its dedup entry.
local function remove(qb, id)
  local key = qb .. 'm:' .. id
  if redis.call('EXISTS', key) == 0 then return 0 end
  local h = redis.call('HMGET', key, 'rm', 'k', 'dk')
  unindex(qb, id, h[1], h[2] or nil)
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

# ARGV: now, qb, lease_timeout, leased_by or '', limit, token base, gb, queue,
# max_deliveries ('' for none), its error text.
# Returns {now, damage events, message hash...}. A damaged record met on the
# way is dead-lettered and a missing one's entries dropped, and the lease goes
# on to the next message, so one bad record never blocks the queue. So is a
# message already delivered max_deliveries times, with the error text.
_LEASE = r"""
local now = now_from(ARGV[1])
local qb, lb, limit, base = ARGV[2], ARGV[4], tonumber(ARGV[5]), ARGV[6]
local gb, queue = ARGV[7], ARGV[8]
local cap, cap_error = tonumber(ARGV[9]), ARGV[10]
if cap == 0 then cap = nil end
local till = fmt(now + tonumber(ARGV[3]))
promote(qb, now)
local out = {fmt(now), events}
local n = 0
while n < limit do
  local members = redis.call('ZRANGE', qb .. 'ready', 0, limit - n - 1)
  if not members[1] then break end
  for _, rm in ipairs(members) do
    local id = string.sub(rm, 33)
    -- Validated before the first write, so no step below can fail half-way.
    local h = usable(qb, id, rm, now)
    if h and cap and tonumber(h.a) >= cap then
      local key = qb .. 'm:' .. id
      redis.call('ZREM', qb .. 'ready', rm)
      redis.call('HDEL', key, 'rm', 'tok')
      redis.call('HSET', key, 'st', 'd', 'fa', fmt(now), 'le', cap_error)
      redis.call('ZADD', qb .. 'dead', fmt(now), h.k .. id)
    elseif h then
      n = n + 1
      local key = qb .. 'm:' .. id
      redis.call('ZREM', qb .. 'ready', rm)
      redis.call('HDEL', key, 'rm')
      redis.call('HINCRBY', key, 'a', 1)
      redis.call('HSET', key, 'st', 'i', 'aa', till, 'tok', base .. string.format('%x', n))
      if lb ~= '' then redis.call('HSET', key, 'lb', lb) else redis.call('HDEL', key, 'lb') end
      redis.call('ZADD', qb .. 'leased', till, id)
      out[#out + 1] = redis.call('HGETALL', key)
    end
  end
end
if #events > 0 then forget_if_empty(qb, gb, queue) end
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
# Returns {1 or 0, damage events}; a damaged record is dead-lettered instead.
_RELEASE = r"""
local now = now_from(ARGV[1])
local qb, id = ARGV[2], ARGV[3]
local key = qb .. 'm:' .. id
local h, bad = read_record(qb, id)
if not h or h.st == 'd' or not holds(h.tok, ARGV[4]) then return {0, events} end
if #bad > 0 then
  quarantine(qb, id, h, bad, now)
  return {0, events}
end
unindex(qb, id, h.rm, nil)
local avail = now + tonumber(ARGV[5])
redis.call('HSET', key, 'st', 'r', 'aa', fmt(avail))
redis.call('HDEL', key, 'tok')
if ARGV[6] ~= '-' then
  redis.call('HSET', key, 'le', string.sub(ARGV[6], 2), 'fa', fmt(now))
end
schedule(qb, id, 'r', avail, tonumber(h.pr), h.k, now)
notify(qb, 1)
return {1, events}
"""

# ARGV: now, qb, id, token, lease_timeout. Reads only the state and token,
# which it compares, so nothing after its first write can fail.
_EXTEND = r"""
local now = now_from(ARGV[1])
local qb, id = ARGV[2], ARGV[3]
local key = qb .. 'm:' .. id
local h = redis.call('HMGET', key, 'st', 'tok', 'rm')
if h[1] ~= 'i' or h[2] ~= ARGV[4] then return 0 end
local till = fmt(now + tonumber(ARGV[5]))
unindex(qb, id, h[3], nil)
redis.call('HSET', key, 'aa', till)
redis.call('ZADD', qb .. 'leased', till, id)
return 1
"""

# ARGV: now, qb, id, token argument, error argument ('-' or 'e<text>').
# Returns {1 or 0, damage events}.
_DEAD_LETTER = r"""
local now = now_from(ARGV[1])
local qb, id = ARGV[2], ARGV[3]
local key = qb .. 'm:' .. id
local h, bad = read_record(qb, id)
if not h or h.st == 'd' or not holds(h.tok, ARGV[4]) then return {0, events} end
if #bad > 0 then
  local also = nil
  if ARGV[5] ~= '-' then also = 'error: ' .. string.sub(ARGV[5], 2) end
  quarantine(qb, id, h, bad, now, also)
  return {1, events}
end
unindex(qb, id, h.rm, nil)
redis.call('HSET', key, 'st', 'd', 'fa', fmt(now))
redis.call('HDEL', key, 'tok')
if ARGV[5] ~= '-' then
  redis.call('HSET', key, 'le', string.sub(ARGV[5], 2))
else
  redis.call('HDEL', key, 'le')
end
redis.call('ZADD', qb .. 'dead', fmt(now), h.k .. id)
return {1, events}
"""

# ARGV: now, qb, then the ids to requeue; none means every dead letter.
# Returns {count, damage events}. Every record is read and checked before the
# first requeue, so a bad one cannot stop the batch half-way; a damaged dead
# letter is mended (its reason kept) and requeued with the rest.
_REQUEUE_DEAD = r"""
local now = now_from(ARGV[1])
local qb = ARGV[2]
local ids = {}
if #ARGV == 2 then
  for _, member in ipairs(redis.call('ZRANGE', qb .. 'dead', 0, -1)) do
    local id = string.sub(member, 16)
    if redis.call('EXISTS', qb .. 'm:' .. id) == 0 then
      redis.call('ZREM', qb .. 'dead', member)
      events[#events + 1] = id
      events[#events + 1] = 'missing'
    else
      ids[#ids + 1] = id
    end
  end
else
  for i = 3, #ARGV do ids[#ids + 1] = ARGV[i] end
end
local todo = {}
for _, id in ipairs(ids) do
  local h, bad = read_record(qb, id)
  if h and h.st == 'd' then
    if #bad > 0 then
      quarantine(qb, id, h, bad, now)
      h = read_record(qb, id)
    end
    todo[#todo + 1] = {id, h}
  end
end
for _, item in ipairs(todo) do
  local id, h = item[1], item[2]
  redis.call('ZREM', qb .. 'dead', h.k .. id)
  redis.call('HSET', qb .. 'm:' .. id, 'st', 'r', 'a', '0', 'aa', fmt(now))
  schedule(qb, id, 'r', now, tonumber(h.pr), h.k, now)
end
if #todo > 0 then notify(qb, #todo) end
return {#todo, events}
"""

# ARGV: now, qb, gb, queue, target ('ready', 'dead' or 'all'). Index entries
# whose record is gone are dropped too (not counted).
_PURGE = r"""
local now = now_from(ARGV[1])
local qb, gb, queue, target = ARGV[2], ARGV[3], ARGV[4], ARGV[5]
local ids = {}
local entries = {}
if target == 'dead' or target == 'all' then
  for _, member in ipairs(redis.call('ZRANGE', qb .. 'dead', 0, -1)) do
    ids[#ids + 1] = string.sub(member, 16)
    entries[#entries + 1] = {'dead', member}
  end
end
if target == 'ready' or target == 'all' then
  for _, member in ipairs(redis.call('ZRANGE', qb .. 'ready', 0, -1)) do
    ids[#ids + 1] = string.sub(member, 33)
    entries[#entries + 1] = {'ready', member}
  end
  for _, id in ipairs(redis.call('ZRANGE', qb .. 'delayed', 0, -1)) do
    ids[#ids + 1] = id
    entries[#entries + 1] = {'delayed', id}
  end
  local leased_max = '+inf'
  if target == 'ready' then leased_max = fmt(now) end
  for _, id in ipairs(redis.call('ZRANGEBYSCORE', qb .. 'leased', '-inf', leased_max)) do
    ids[#ids + 1] = id
    entries[#entries + 1] = {'leased', id}
  end
end
local n = 0
for _, id in ipairs(ids) do n = n + remove(qb, id) end
for _, e in ipairs(entries) do redis.call('ZREM', qb .. e[1], e[2]) end
if #entries > 0 then forget_if_empty(qb, gb, queue) end
return n
"""

# ARGV: now, qb, gb, queue. Returns {now, message hash or false, damage events}.
_PEEK = r"""
local now = now_from(ARGV[1])
local qb, gb, queue = ARGV[2], ARGV[3], ARGV[4]
promote(qb, now)
local found = false
while true do
  local first = redis.call('ZRANGE', qb .. 'ready', 0, 0)
  if not first[1] then break end
  local id = string.sub(first[1], 33)
  if usable(qb, id, first[1], now) then
    found = redis.call('HGETALL', qb .. 'm:' .. id)
    break
  end
end
if #events > 0 then forget_if_empty(qb, gb, queue) end
return {fmt(now), found, events}
"""

# ARGV: now, qb, id. Returns {now, message hash (empty when unknown), damage
# events}; a damaged record is dead-lettered first, so it reads back.
_INSPECT = r"""
local now = now_from(ARGV[1])
local qb, id = ARGV[2], ARGV[3]
local h, bad = read_record(qb, id)
if h and #bad > 0 then quarantine(qb, id, h, bad, now) end
return {fmt(now), redis.call('HGETALL', qb .. 'm:' .. id), events}
"""

# ARGV: now, qb, limit (-1 for all), gb, queue. Returns {now, damage events,
# message hash...}, oldest failure first.
_DEAD_LETTERS = r"""
local now = now_from(ARGV[1])
local qb, gb, queue = ARGV[2], ARGV[4], ARGV[5]
local out = {fmt(now), events}
for _, member in ipairs(redis.call('ZRANGE', qb .. 'dead', 0, tonumber(ARGV[3]))) do
  local id = string.sub(member, 16)
  local h, bad = read_record(qb, id)
  if h == nil then
    redis.call('ZREM', qb .. 'dead', member)
    events[#events + 1] = id
    events[#events + 1] = 'missing'
  else
    if #bad > 0 then quarantine(qb, id, h, bad, now) end
    out[#out + 1] = redis.call('HGETALL', qb .. 'm:' .. id)
  end
end
if #events > 0 then forget_if_empty(qb, gb, queue) end
return out
"""

# ARGV: now, qb. Read only: one line per index entry whose record is gone.
_CHECK_INDEXES = r"""
local qb = ARGV[2]
local out = {}
local function gone(id, where)
  if redis.call('EXISTS', qb .. 'm:' .. id) == 0 then
    out[#out + 1] = 'message ' .. id .. ': listed in the ' .. where
      .. ' index but its record is missing'
  end
end
for _, m in ipairs(redis.call('ZRANGE', qb .. 'ready', 0, -1)) do
  gone(string.sub(m, 33), 'ready')
end
for _, id in ipairs(redis.call('ZRANGE', qb .. 'delayed', 0, -1)) do gone(id, 'delayed') end
for _, id in ipairs(redis.call('ZRANGE', qb .. 'leased', 0, -1)) do gone(id, 'leased') end
for _, m in ipairs(redis.call('ZRANGE', qb .. 'dead', 0, -1)) do gone(string.sub(m, 16), 'dead') end
return out
"""

# ARGV: now, qb, ids... Read only: one line per record that is damaged or in no index.
_CHECK_RECORDS = r"""
local qb = ARGV[2]
local out = {}
for i = 3, #ARGV do
  local id = ARGV[i]
  local h, bad = read_record(qb, id)
  if h and #bad > 0 then
    out[#out + 1] = 'message ' .. id .. ': damaged record: ' .. table.concat(bad, '; ')
  elseif h then
    local indexed
    if h.st == 'd' then
      indexed = redis.call('ZSCORE', qb .. 'dead', h.k .. id)
    else
      indexed = (h.rm and redis.call('ZSCORE', qb .. 'ready', h.rm))
        or redis.call('ZSCORE', qb .. 'delayed', id) or redis.call('ZSCORE', qb .. 'leased', id)
    end
    if not indexed then out[#out + 1] = 'message ' .. id .. ': its record is in no index' end
  end
end
return out
"""

# ARGV: now, qb, gb, queue. Drops index entries whose record is gone; one line each.
_REPAIR_INDEXES = r"""
local qb, gb, queue = ARGV[2], ARGV[3], ARGV[4]
local out = {}
local function drop(zname, member, id)
  if redis.call('EXISTS', qb .. 'm:' .. id) == 0 then
    redis.call('ZREM', qb .. zname, member)
    out[#out + 1] = 'message ' .. id .. ': dropped its ' .. zname
      .. ' index entry, the record is gone'
  end
end
for _, m in ipairs(redis.call('ZRANGE', qb .. 'ready', 0, -1)) do
  drop('ready', m, string.sub(m, 33))
end
for _, id in ipairs(redis.call('ZRANGE', qb .. 'delayed', 0, -1)) do drop('delayed', id, id) end
for _, id in ipairs(redis.call('ZRANGE', qb .. 'leased', 0, -1)) do drop('leased', id, id) end
for _, m in ipairs(redis.call('ZRANGE', qb .. 'dead', 0, -1)) do
  drop('dead', m, string.sub(m, 16))
end
if #out > 0 then forget_if_empty(qb, gb, queue) end
return out
"""

# ARGV: now, qb, gb, queue, ids... Dead-letters damaged records and indexes
# records that are in no index; one line per record mended.
_REPAIR_RECORDS = r"""
local now = now_from(ARGV[1])
local qb, gb, queue = ARGV[2], ARGV[3], ARGV[4]
local out = {}
for i = 5, #ARGV do
  local id = ARGV[i]
  local h, bad = read_record(qb, id)
  if h and #bad > 0 then
    quarantine(qb, id, h, bad, now)
    out[#out + 1] = 'message ' .. id .. ': moved to the dead letters: ' .. events[#events]
  elseif h then
    local indexed
    if h.st == 'd' then
      indexed = redis.call('ZSCORE', qb .. 'dead', h.k .. id)
    else
      indexed = (h.rm and redis.call('ZSCORE', qb .. 'ready', h.rm))
        or redis.call('ZSCORE', qb .. 'delayed', id) or redis.call('ZSCORE', qb .. 'leased', id)
    end
    if not indexed then
      if h.st == 'd' then
        redis.call('ZADD', qb .. 'dead', h.fa or fmt(now), h.k .. id)
      else
        schedule(qb, id, h.st, tonumber(h.aa), tonumber(h.pr), h.k, now)
      end
      redis.call('SADD', gb .. 'queues', queue)
      out[#out + 1] = 'message ' .. id .. ': its record was in no index; indexed it again'
    end
  end
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
        "check_indexes": _CHECK_INDEXES,
        "check_records": _CHECK_RECORDS,
        "repair_indexes": _REPAIR_INDEXES,
        "repair_records": _REPAIR_RECORDS,
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
