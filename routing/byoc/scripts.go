package byoc

import "github.com/redis/go-redis/v9"

// The scripts below are every change to the state; each runs atomically.
// KEYS[1] is always the routing's hash (or the due set for the sweep),
// and the hash, the due set and the stats share one hash tag.

// claimScript takes the right to call POST route for a conversation, or
// says why not: "dup" (the same routing is in flight, pending or, for an
// Initial or keyed routing, done), "busy" (another routing is in flight),
// "conflict" (an Initial for a conversation already routed).
//
// KEYS: hash, stats. ARGV: key, type, now, lease until, token, explicit
// key (1/0), expiry (ms) for a hash that holds no live routing.
var claimScript = redis.NewScript(`
local h = KEYS[1]
local rk, typ, now, untl, token = ARGV[1], ARGV[2], tonumber(ARGV[3]), ARGV[4], ARGV[5]
local explicit, ttl = ARGV[6] == '1', ARGV[7]
local cur = redis.call('HMGET', h, 'key', 'type', 'state', 'claim', 'claim_until')
local ckey, ctype, cstate, claim, cuntil = cur[1], cur[2], cur[3], cur[4], tonumber(cur[5])
if claim and cuntil and cuntil > now then
  if claim == rk then
    redis.call('HINCRBY', KEYS[2], 'duplicates', 1)
    return {'dup', 'in_flight'}
  end
  return {'busy', claim}
end
if ckey then
  if ckey == rk then
    if cstate ~= 'done' or typ == 'Initial' or explicit then
      redis.call('HINCRBY', KEYS[2], 'duplicates', 1)
      return {'dup', cstate}
    end
  elseif typ == 'Initial' then
    return {'conflict', ctype}
  end
  if cstate == 'deleting' then
    -- A DELETE route under way could remove the new routing too.
    return {'busy', ckey}
  end
end
redis.call('HSET', h, 'claim', rk, 'claim_until', untl, 'claim_token', token)
if not cstate or cstate == 'done' or cstate == 'abandoned' then
  redis.call('PEXPIRE', h, ttl)
end
return {'go'}
`)

// commitScript records a routing Salesforce took: pending until due.
//
// KEYS: hash, due, stats. ARGV: conversation, key, type, user key, token,
// now, due, request id, way.
var commitScript = redis.NewScript(`
local h = KEYS[1]
redis.call('HSET', h, 'key', ARGV[2], 'type', ARGV[3], 'ukey', ARGV[4], 'state', 'pending',
  'since', ARGV[6], 'due', ARGV[7], 'attempts', 0, 'last_error', '', 'request_id', ARGV[8],
  'way', ARGV[9], 'del_token', '', 'end_reason', '')
if redis.call('HGET', h, 'claim_token') == ARGV[5] then
  redis.call('HDEL', h, 'claim', 'claim_until', 'claim_token')
end
redis.call('PERSIST', h)
redis.call('ZADD', KEYS[2], ARGV[7], ARGV[1])
redis.call('HINCRBY', KEYS[3], 'routed', 1)
return 1
`)

// releaseScript drops a claim whose route call failed, so that the next
// delegation calls again.
//
// KEYS: hash. ARGV: token, expiry (ms) of a finished routing.
var releaseScript = redis.NewScript(`
local h = KEYS[1]
if redis.call('HGET', h, 'claim_token') ~= ARGV[1] then return 0 end
redis.call('HDEL', h, 'claim', 'claim_until', 'claim_token')
local st = redis.call('HGET', h, 'state')
if not st then
  redis.call('DEL', h)
elseif st == 'done' or st == 'abandoned' then
  redis.call('PEXPIRE', h, ARGV[2])
end
return 1
`)

// acceptedScript marks a pending routing done: a rep took it.
//
// KEYS: hash, due, stats. ARGV: conversation, now, expiry (ms).
var acceptedScript = redis.NewScript(`
local h = KEYS[1]
local st = redis.call('HGET', h, 'state')
if not st then return {'notfound'} end
if st == 'done' or st == 'abandoned' then return {'already', st} end
redis.call('HSET', h, 'state', 'done', 'ended', ARGV[2], 'end_reason', 'accepted', 'del_token', '')
redis.call('ZREM', KEYS[2], ARGV[1])
if not redis.call('HGET', h, 'claim') then
  redis.call('PEXPIRE', h, ARGV[3])
end
redis.call('HINCRBY', KEYS[3], 'accepted', 1)
return {'ok'}
`)

// takeScript claims pending routings for deletion: those due by now, or
// the one named. A claimed routing is "deleting" under the taker's token,
// with its due time pushed to the lease's end, so no one else takes it
// while the call runs and another may if the taker dies.
//
// KEYS: due. ARGV: prefix, cutoff (due by then), batch, lease until,
// token, conversation ("" for the due ones).
var takeScript = redis.NewScript(`
local prefix, now, batch, untl, token, one = ARGV[1], ARGV[2], tonumber(ARGV[3]), ARGV[4], ARGV[5], ARGV[6]
local convs
if one ~= '' then
  convs = {one}
else
  convs = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', now, 'LIMIT', 0, batch)
end
local out = {}
for _, c in ipairs(convs) do
  local h = prefix .. 'r:' .. c
  local st = redis.call('HGET', h, 'state')
  if st == 'pending' or (st == 'deleting' and one == '') then
    redis.call('HSET', h, 'state', 'deleting', 'del_token', token)
    redis.call('ZADD', KEYS[1], untl, c)
    table.insert(out, c)
  elseif one == '' then
    redis.call('ZREM', KEYS[1], c)
  else
    table.insert(out, '!' .. (st or ''))
  end
end
return out
`)

// finishScript records what became of a DELETE route call: "deleted"
// (done), "retry" (pending again, due at next), "final" (given up).
// Retries past the maximum are given up too. Answers "stale" when the
// routing is no longer this taker's (accepted meanwhile, or its lease
// lapsed and another took it).
//
// KEYS: hash, due, stats. ARGV: conversation, token, outcome, now, next
// due, max attempts, error text, expiry (ms), end reason.
var finishScript = redis.NewScript(`
local h = KEYS[1]
local conv, token, outcome, now = ARGV[1], ARGV[2], ARGV[3], ARGV[4]
if redis.call('HGET', h, 'state') ~= 'deleting' or redis.call('HGET', h, 'del_token') ~= token then
  return {'stale', 0}
end
if outcome == 'deleted' then
  redis.call('HSET', h, 'state', 'done', 'ended', now, 'end_reason', ARGV[9], 'del_token', '')
  redis.call('ZREM', KEYS[2], conv)
  redis.call('PEXPIRE', h, ARGV[8])
  redis.call('HINCRBY', KEYS[3], 'deleted', 1)
  return {'done', tonumber(redis.call('HGET', h, 'attempts'))}
end
local n = redis.call('HINCRBY', h, 'attempts', 1)
redis.call('HSET', h, 'last_error', ARGV[7])
redis.call('HINCRBY', KEYS[3], 'delete_failed', 1)
if outcome == 'final' or n >= tonumber(ARGV[6]) then
  redis.call('HSET', h, 'state', 'abandoned', 'ended', now, 'end_reason', ARGV[9], 'del_token', '')
  redis.call('ZREM', KEYS[2], conv)
  redis.call('PEXPIRE', h, ARGV[8])
  redis.call('HINCRBY', KEYS[3], 'delete_abandoned', 1)
  return {'abandoned', n}
end
redis.call('HSET', h, 'state', 'pending', 'del_token', '')
redis.call('ZADD', KEYS[2], ARGV[5], conv)
return {'retry', n}
`)
