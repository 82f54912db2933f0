-- Pull mode: one script, one operation per call (ARGV[1]).
--
-- Keys are built from the prefix in ARGV[2]. That is safe on a Redis
-- Cluster only because the prefix holds a hash tag, so every key of ours
-- and every agent stream (ARGV[3], same tag) sits in one slot.
--
-- Every operation checks everything before its first write: fail() raises
-- a table that the dispatcher turns into an error reply, and no operation
-- calls it after writing, so a refused call changes nothing.
--
-- Ids reach the script already checked (letters, digits, - _ . @ +), so
-- they go into keys and into JSON without escaping.

local OP = ARGV[1]
local P = ARGV[2]
local SP = ARGV[3]
local SMAX = ARGV[4]
local LMAX = ARGV[5]
local NOW = ARGV[6]
local TTL = ARGV[7]
local NA = 7

local function arg(i) return ARGV[NA + i] end

local EINVALID, ENOTFOUND, ECONFLICT, ESTALE = 'invalid', 'not_found', 'conflict', 'stale'
local function fail(code, field, msg) error({ code = code, field = field, msg = msg }) end

local function lkey(l) return P .. 'l:' .. l end
local function rkey(id) return P .. 'r:' .. id end
local function akey(a) return P .. 'a:' .. a .. ':lists' end
local CHANNELS = P .. 'channels'
local LISTS = P .. 'lists'

local function hload(key)
  local r = redis.call('HGETALL', key)
  if #r == 0 then return nil end
  local h = {}
  for i = 1, #r, 2 do h[r[i]] = r[i + 1] end
  return h
end

local function split(s)
  local l = {}
  for x in string.gmatch(s or '', '[^,]+') do l[#l + 1] = x end
  return l
end

-- union merges lists of agents into one sorted list without repeats, so
-- an agent who is both a subscriber and in the request is told once.
local function union(...)
  local seen, out = {}, {}
  for _, l in ipairs({ ... }) do
    for _, a in ipairs(l) do
      if not seen[a] then
        seen[a] = true
        out[#out + 1] = a
      end
    end
  end
  table.sort(out)
  return out
end

local function members(key)
  local l = redis.call('SMEMBERS', key)
  table.sort(l)
  return l
end

---------------------------------------------------------------------------
-- notifications and the change log

-- notify writes to an agent's stream exactly as routing/stream reads it.
local function notify(agent, typ, d)
  redis.call('XADD', SP .. 'agent:' .. agent .. ':events', 'MAXLEN', '~', SMAX, '*', 't', typ, 'd', d)
  redis.call('PUBLISH', SP .. 'agent-events', agent)
end

local function notify_all(agents, typ, d)
  for _, a in ipairs(agents) do notify(a, typ, d) end
end

-- list_event names the agent whose join, leave or close changed the
-- state, so that a subscriber's copy of the List keeps its agents right;
-- the state says which it was (ACTIVE: joined, INACTIVE: left, CLOSED:
-- closed).
local function list_event(list, id, seq, state, agent)
  local d = '{"list":"' .. list .. '","conversation":"' .. id .. '","seq":' .. seq .. ',"state":"' .. state .. '"'
  if agent ~= '' then d = d .. ',"agent":"' .. agent .. '"' end
  return d .. '}'
end

local function agent_event(list, id, agent, seq, state)
  return '{"conversation":"' .. id .. '","agent":"' .. agent .. '","list":"' .. list .. '","seq":' .. seq ..
      ',"state":"' .. state .. '"}'
end

-- change records one change of a List: its seq grows by one and the log
-- gets an entry whose id is the seq itself, so a reader can tell at once
-- whether the entry after the one it knows is still there.
local function change(list, typ, id, state, agent)
  local seq = redis.call('HINCRBY', lkey(list), 'seq', 1)
  local s = string.format('%d', seq)
  redis.call('XADD', lkey(list) .. ':log', 'MAXLEN', '~', LMAX, s .. '-0',
    'type', typ, 'conversation', id, 'state', state, 'agent', agent, 'at', NOW)
  return s
end

---------------------------------------------------------------------------
-- requests

local function fields(id, h)
  local agents = members(rkey(id) .. ':agents')
  return { id, h.list, h.ch or '', h.sess or '', h.attrs or '{}', h.state, h.created or '0', h.updated or '0',
    h.closed or '', h.closed_by or '', h.seq or '0', table.concat(agents, ',') }
end

local function reply(flag, id, h)
  local r = { 'ok', flag }
  for _, v in ipairs(fields(id, h)) do r[#r + 1] = v end
  return r
end

local function must_request(id)
  local h = hload(rkey(id))
  if not h then fail(ENOTFOUND, 'id', 'request ' .. id .. ' does not exist') end
  return h
end

local function must_list(list, field)
  if redis.call('EXISTS', lkey(list)) == 0 then fail(ENOTFOUND, field, 'list ' .. list .. ' does not exist') end
end

local function save(id, h, ...)
  local args = { ... }
  local kv = {}
  for i = 1, #args, 2 do
    h[args[i]] = args[i + 1]
    kv[#kv + 1] = args[i]
    kv[#kv + 1] = args[i + 1]
  end
  redis.call('HSET', rkey(id), unpack(kv))
end

local ops = {}

-- publish(id, list, channel, session, attributes JSON, by_channel)
function ops.publish()
  local id, list, ch, sess, attrs, bych = arg(1), arg(2), arg(3), arg(4), arg(5), arg(6)
  if bych == '1' then
    local owner = redis.call('HGET', CHANNELS, ch)
    if not owner then fail(ENOTFOUND, 'channel', 'no list takes channel ' .. ch) end
    if list ~= '' and list ~= owner then
      fail(EINVALID, 'list', 'channel ' .. ch .. ' publishes to list ' .. owner .. ', not ' .. list)
    end
    list = owner
  else
    must_list(list, 'list')
  end
  local rk = rkey(id)
  local h = hload(rk)
  if h then
    if h.list ~= list then fail(ECONFLICT, 'id', 'request ' .. id .. ' is on list ' .. h.list) end
    if h.state == 'CLOSED' then
      fail(ECONFLICT, 'id', 'request ' .. id .. ' is closed; a new conversation needs a new id')
    end
    return reply(0, id, h)
  end
  -- Left over from an earlier request of this id whose hash expired.
  redis.call('DEL', rk .. ':agents', rk .. ':ever')
  local seq = change(list, 'List_Request', id, 'UNREAD', '')
  h = {}
  save(id, h, 'list', list, 'ch', ch, 'sess', sess, 'attrs', attrs, 'state', 'UNREAD', 'created', NOW,
    'updated', NOW, 'seq', seq)
  redis.call('ZADD', lkey(list) .. ':open', NOW, id)
  notify_all(members(lkey(list) .. ':subs'), 'List_Request', list_event(list, id, seq, 'UNREAD', ''))
  return reply(1, id, h)
end

-- message(id): a customer wrote in the conversation.
function ops.message()
  local id = arg(1)
  local h = must_request(id)
  if h.state == 'CLOSED' then fail(ECONFLICT, 'id', 'request ' .. id .. ' is closed') end
  local told = 0
  if h.state == 'ACTIVE' then
    local agents = members(rkey(id) .. ':agents')
    local seq = redis.call('HGET', lkey(h.list), 'seq') or '0'
    notify_all(agents, 'Customer_Message',
      '{"list":"' .. h.list .. '","conversation":"' .. id .. '","seq":' .. seq .. '}')
    told = #agents
  end
  return reply(told, id, h)
end

-- join(id, agent)
function ops.join()
  local id, agent = arg(1), arg(2)
  local h = must_request(id)
  if h.state == 'CLOSED' then fail(ECONFLICT, 'id', 'request ' .. id .. ' is closed') end
  local ak = rkey(id) .. ':agents'
  if redis.call('SISMEMBER', ak, agent) == 1 then return reply(0, id, h) end
  local before = members(ak)
  redis.call('SADD', ak, agent)
  redis.call('SADD', rkey(id) .. ':ever', agent)
  local after = members(ak)
  local old = h.state
  local seq = change(h.list, 'Agent_Joined', id, 'ACTIVE', agent)
  save(id, h, 'state', 'ACTIVE', 'updated', NOW, 'seq', seq)
  if old ~= 'ACTIVE' then
    notify_all(union(members(lkey(h.list) .. ':subs'), after), 'List_Update', list_event(h.list, id, seq, 'ACTIVE', agent))
  end
  notify_all(union(before, after), 'Agent_Joined', agent_event(h.list, id, agent, seq, 'ACTIVE'))
  return reply(1, id, h)
end

-- leave(id, agent)
function ops.leave()
  local id, agent = arg(1), arg(2)
  local h = must_request(id)
  local ak = rkey(id) .. ':agents'
  if redis.call('SISMEMBER', ak, agent) == 0 then
    if redis.call('SISMEMBER', rkey(id) .. ':ever', agent) == 1 then return reply(0, id, h) end
    fail(ECONFLICT, 'agent', 'agent ' .. agent .. ' is not in request ' .. id)
  end
  -- A closed request keeps the agents it had, for the record; there is
  -- nothing left to leave.
  if h.state == 'CLOSED' then return reply(0, id, h) end
  local before = members(ak)
  redis.call('SREM', ak, agent)
  local left = redis.call('SCARD', ak)
  local old, new = h.state, 'INACTIVE'
  if left > 0 then new = 'ACTIVE' end
  local seq = change(h.list, 'Agent_Left', id, new, agent)
  save(id, h, 'state', new, 'updated', NOW, 'seq', seq)
  if old ~= new then
    notify_all(union(members(lkey(h.list) .. ':subs'), before), 'List_Update', list_event(h.list, id, seq, new, agent))
  end
  notify_all(before, 'Agent_Left', agent_event(h.list, id, agent, seq, new))
  return reply(1, id, h)
end

-- close(id, agent): agent '' is the system.
function ops.close()
  local id, agent = arg(1), arg(2)
  local h = must_request(id)
  if h.state == 'CLOSED' then return reply(0, id, h) end
  local rk = rkey(id)
  if agent ~= '' and redis.call('SISMEMBER', rk .. ':agents', agent) == 0 then
    fail(ECONFLICT, 'agent', 'agent ' .. agent .. ' is not in request ' .. id .. ', so may not close it')
  end
  local seq = change(h.list, 'List_Update', id, 'CLOSED', agent)
  save(id, h, 'state', 'CLOSED', 'updated', NOW, 'closed', NOW, 'closed_by', agent, 'seq', seq)
  redis.call('ZREM', lkey(h.list) .. ':open', id)
  for _, k in ipairs({ rk, rk .. ':agents', rk .. ':ever' }) do redis.call('PEXPIRE', k, TTL) end
  notify_all(union(members(lkey(h.list) .. ':subs'), members(rk .. ':agents')), 'List_Update',
    list_event(h.list, id, seq, 'CLOSED', agent))
  return reply(1, id, h)
end

function ops.get()
  local id = arg(1)
  return reply(0, id, must_request(id))
end

---------------------------------------------------------------------------
-- Lists and subscriptions

-- put_list(id, name, channels joined by commas)
function ops.put_list()
  local id, name, chans = arg(1), arg(2), arg(3)
  local new = {}
  for i, ch in ipairs(split(chans)) do
    local owner = redis.call('HGET', CHANNELS, ch)
    if owner and owner ~= id then
      fail(ECONFLICT, 'channels[' .. (i - 1) .. ']', 'channel ' .. ch .. ' already publishes to list ' .. owner)
    end
    new[ch] = true
  end
  local k = lkey(id)
  local created = 0
  if redis.call('EXISTS', k) == 0 then
    created = 1
    redis.call('HSET', k, 'seq', 0, 'created', NOW)
  end
  for _, ch in ipairs(split(redis.call('HGET', k, 'chans'))) do
    if not new[ch] then redis.call('HDEL', CHANNELS, ch) end
  end
  for ch, _ in pairs(new) do redis.call('HSET', CHANNELS, ch, id) end
  redis.call('HSET', k, 'name', name, 'chans', chans, 'updated', NOW)
  redis.call('SADD', LISTS, id)
  return { 'ok', created }
end

function ops.delete_list()
  local id = arg(1)
  local k = lkey(id)
  must_list(id, 'id')
  local n = redis.call('ZCARD', k .. ':open')
  if n > 0 then fail(ECONFLICT, 'id', 'list ' .. id .. ' still has ' .. n .. ' open requests; close them first') end
  for _, ch in ipairs(split(redis.call('HGET', k, 'chans'))) do
    if redis.call('HGET', CHANNELS, ch) == id then redis.call('HDEL', CHANNELS, ch) end
  end
  for _, a in ipairs(members(k .. ':subs')) do redis.call('SREM', akey(a), id) end
  redis.call('DEL', k, k .. ':open', k .. ':subs', k .. ':log')
  redis.call('SREM', LISTS, id)
  return { 'ok', 1 }
end

-- subscribe(agent, lists joined by commas)
function ops.subscribe()
  local agent = arg(1)
  local lists = split(arg(2))
  for i, l in ipairs(lists) do must_list(l, 'lists[' .. (i - 1) .. ']') end
  for _, l in ipairs(lists) do
    redis.call('SADD', lkey(l) .. ':subs', agent)
    redis.call('SADD', akey(agent), l)
  end
  return { 'ok', #lists }
end

function ops.unsubscribe()
  local agent = arg(1)
  local lists = split(arg(2))
  for _, l in ipairs(lists) do
    redis.call('SREM', lkey(l) .. ':subs', agent)
    redis.call('SREM', akey(agent), l)
  end
  return { 'ok', #lists }
end

---------------------------------------------------------------------------
-- reading a List consistently

-- snapshot(list): the seq, then the open requests, oldest first.
function ops.snapshot()
  local list = arg(1)
  must_list(list, 'list')
  local k = lkey(list)
  local r = { 'ok', redis.call('HGET', k, 'seq') or '0' }
  for _, id in ipairs(redis.call('ZRANGE', k .. ':open', 0, -1)) do
    local h = hload(rkey(id))
    if h then
      for _, v in ipairs(fields(id, h)) do r[#r + 1] = v end
    end
  end
  return r
end

-- changes(list, after): the seq, then the log entries after seq "after".
function ops.changes()
  local list, after = arg(1), tonumber(arg(2))
  must_list(list, 'list')
  local k = lkey(list)
  local seq = tonumber(redis.call('HGET', k, 'seq') or '0')
  if after > seq then
    fail(ESTALE, 'after', 'is ahead of list ' .. list .. ', whose seq is ' .. string.format('%d', seq))
  end
  local r = { 'ok', string.format('%d', seq) }
  if after == seq then return r end
  local want = string.format('%d', after + 1) .. '-0'
  local entries = redis.call('XRANGE', k .. ':log', want, '+')
  if #entries == 0 or entries[1][1] ~= want then
    fail(ESTALE, 'after', 'is older than the change log of list ' .. list .. ' reaches')
  end
  for _, e in ipairs(entries) do
    local f = {}
    for i = 1, #e[2], 2 do f[e[2][i]] = e[2][i + 1] end
    local s = string.sub(e[1], 1, string.find(e[1], '-', 1, true) - 1)
    r[#r + 1] = s
    r[#r + 1] = f.type or ''
    r[#r + 1] = f.conversation or ''
    r[#r + 1] = f.state or ''
    r[#r + 1] = f.agent or ''
    r[#r + 1] = f.at or '0'
  end
  return r
end

---------------------------------------------------------------------------

local f = ops[OP]
if not f then return { 'err', 'internal', '', 'unknown operation ' .. tostring(OP) } end
local ok, res = pcall(f)
if ok then return res end
if type(res) == 'table' and res.code then return { 'err', res.code, res.field, res.msg } end
if type(res) == 'table' and res.err then return redis.error_reply(res.err) end
return redis.error_reply(tostring(res))
