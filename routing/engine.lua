-- The routing engine: one script, one operation per call (ARGV[1]).
--
-- Every key is built from the prefix in ARGV[2]; that is safe on a Redis
-- Cluster only because the prefix holds a hash tag, so all keys share one
-- slot. Time comes from ARGV[6] (ms), never from Redis, so a fake clock
-- drives everything.
--
-- Records (conversation, agent and queue hashes) are read once per call
-- into a cache, changed there and written back at the end (flush), which
-- keeps a decision to a handful of commands. Sorted sets (waiting, free
-- agents, timers) are written at once, so every match inside one call sees
-- the state the previous one left.
--
-- Validation happens before any write: fail() raises a table that the
-- dispatcher turns into an error reply, and no operation calls it after
-- its first write, so a refused call changes nothing.

-- Per-call values, set by begin() from the call's arguments. They are
-- locals of the chunk rather than of main() so that the functions below
-- see them; the chunk runs once per call under EVAL, and once per load as
-- a Redis Function library (see engine.go), which is why begin() must
-- reset every table a call changes.
local A, OP, P, SP, SMAX, OMAX, NOW, DEF_OFFER, COOL, XLIMIT, LOGOFF, TTL, GRACE
local NA = 12
-- Derived once per call: the keys every decision writes and the clock as
-- text. The Lua in Redis hashes every byte of each string it makes, so
-- building the same key or number again is not free.
local KTIMERS, KOUTBOX, KEVENTS, NOWS

-- "Until forever": the transferring agent's exclusion. Kept under 1e15
-- so that every server prints it as digits (the tests' in-process Redis
-- answers 9e15 as "9e+15", which its Lua cannot read back as a number).
local FAR = 999999999999999
local BAND = 10000000000000  -- wait score = band * BAND + enqueued ms

-- Every function lives in R rather than in a local of its own: Lua 5.1
-- finds a closure's upvalues by walking the list of captured locals, so
-- sixty local functions capturing each other would cost tens of
-- microseconds on every call just to be defined.
local R = {}

local function arg(i) return A[NA + i] end
local function s(n) return string.format('%d', n) end
local function num(v) return tonumber(v) or 0 end
-- zs is number v as an argument of redis.call: given a number, Redis
-- prints it with %.17g, several times dearer than s() and the same text
-- for whole numbers of this size. t, when given, is s(v) made already.
local function zs(v, t)
  if v % 1 == 0 and v > -1e15 and v < 1e15 then return t or s(v) end
  return v
end

local function fail(code, field, msg) error({ code = code, field = field, msg = msg }) end
local EINVALID, ENOTFOUND, ECONFLICT = 'invalid', 'not_found', 'conflict'

local TERMINAL = { ended = true, cancelled = true, timed_out = true }

local OFFERS = {} -- conv, agent pairs offered during this call

---------------------------------------------------------------------------
-- record cache

local CV, AG, QU = {}, {}, {}

-- load reads a record's hash into a table made by mk, which has the
-- record's usual fields in it already (as nils), so that filling it does
-- not grow and rehash it five or six times: a table constructor is the
-- only way Lua 5.1 has to size a table's hash part.
function R.load(key, mk)
  local r = redis.call('HGETALL', key)
  local n = #r
  if n == 0 then return nil end
  local h = mk()
  for i = 1, n, 2 do h[r[i]] = r[i + 1] end
  return h
end

local function convh()
  return { state = nil, q = nil, ch = nil, prio = nil, pref = nil, created = nil, enq = nil, score = nil,
    jn = nil, j1 = nil, j2 = nil,
    seq = nil, oid = nil, where = nil, oto = nil, agent = nil, xfer = nil, xto = nil, oexp = nil, last_a = nil,
    last_o = nil, wt = nil, assigned = nil, ended = nil, cool = nil, xenq = nil }
end

local function agenth()
  return { presence = nil, hb = nil, xrow = nil, np = nil, cool = nil }
end

local function queueh()
  return { name = nil, prio = nil, offer = nil, maxwait = nil, pref = nil, chans = nil }
end

local function set(x, f, v)
  x.h[f] = v
  x.d[f] = true
end

function R.conv(id)
  local c = CV[id]
  if c ~= nil then return c end
  local k = P .. 'c:' .. id
  local h = R.load(k, convh)
  if not h then
    CV[id] = false
    return false
  end
  c = { id = id, h = h, d = {}, k = k }
  CV[id] = c
  return c
end

function R.queue(id)
  local q = QU[id]
  if q ~= nil then return q end
  local k = P .. 'q:' .. id
  local h = R.load(k, queueh)
  if not h then
    QU[id] = false
    return false
  end
  q = { id = id, h = h, d = {}, k = k, ch = {} }
  for ch in string.gmatch(h.chans or '', '[^,]+') do q.ch[ch] = true end
  QU[id] = q
  return q
end

-- FS maps a channel to the names of its load, cap and idle fields, and
-- CAPCH an agent field's name to its channel when it is a cap: field
-- (false when not). They are the only tables kept from call to call: they
-- spare making the same strings again, and hold an entry per channel and
-- per field name, a handful.
local FS, CAPCH = {}, {}

-- capch is the channel of cap: field f, or false.
local function capch(f)
  local ch = CAPCH[f]
  if ch == nil then
    ch = (f:sub(1, 4) == 'cap:') and f:sub(5) or false
    CAPCH[f] = ch
  end
  return ch
end

-- fs is the agent's score in the free sets of channel ch: its idle-since
-- time when it may take one more conversation there, nil otherwise.
function R.fs(a, ch)
  local h = a.h
  if h.presence ~= 'available' then return nil end
  local f = FS[ch]
  if not f then
    f = { 'load:' .. ch, 'cap:' .. ch, 'idle:' .. ch }
    FS[ch] = f
  end
  if num(h[f[1]]) >= num(h[f[2]]) then return nil end
  return num(h[f[3]])
end

function R.agent(id)
  local a = AG[id]
  if a ~= nil then return a end
  local k = P .. 'a:' .. id
  local h = R.load(k, agenth)
  if not h then
    AG[id] = false
    return false
  end
  a = { id = id, h = h, d = {}, k = k, free0 = {}, qc = {} }
  for f, _ in pairs(h) do
    local ch = capch(f)
    if ch then a.free0[ch] = R.fs(a, ch) end
  end
  AG[id] = a
  return a
end

function R.newagent(id)
  local a = { id = id, h = { presence = 'offline' }, d = { presence = true }, k = P .. 'a:' .. id, free0 = {}, qc = {} }
  AG[id] = a
  return a
end

---------------------------------------------------------------------------
-- agents: queues per channel and the free sets

-- qc lists the queues the agent joined that serve channel ch, highest
-- queue priority first, flat as the reply has them: queue, priority,
-- queue, priority... (the priorities made numbers in place).
function R.qc(a, ch)
  local l = a.qc[ch]
  if l then return l end
  l = redis.call('ZREVRANGE', P .. 'a:' .. a.id .. ':qc:' .. ch, '0', '-1', 'WITHSCORES')
  for i = 2, #l, 2 do l[i] = tonumber(l[i]) end
  a.qc[ch] = l
  return l
end

function R.in_queue(a, q, ch)
  local l = R.qc(a, ch)
  for i = 1, #l, 2 do
    if l[i] == q then return true end
  end
  return false
end

-- The free sets follow the agent records lazily: touch notes that an
-- agent's free state may have changed, sync writes the changes before
-- anything reads a free set and at the end. An end followed by a new offer
-- in one call thus writes nothing for a single-capacity channel.
local DIRTY = {}

function R.touch(a, ch)
  a.fd = a.fd or {}
  a.fd[ch or '*'] = true
  DIRTY[a.id] = a
end

function R.sync_one(a, c)
  local new = R.fs(a, c)
  if new ~= a.free0[c] then
    local l = R.qc(a, c)
    for i = 1, #l, 2 do
      local key = P .. 'q:' .. l[i] .. ':free:' .. c
      if new then redis.call('ZADD', key, new, a.id) else redis.call('ZREM', key, a.id) end
    end
    a.free0[c] = new
  end
end

function R.sync()
  for _, a in pairs(DIRTY) do
    if a.fd['*'] then
      for f, _ in pairs(a.h) do
        local ch = capch(f)
        if ch then R.sync_one(a, ch) end
      end
    else
      for c, _ in pairs(a.fd) do R.sync_one(a, c) end
    end
    a.fd = nil
  end
  DIRTY = {}
end

-- HARGS holds one HSET's field, value list while flush writes a record.
-- It is reused from record to record and call to call, always with an
-- explicit length, so it grows once instead of for every record.
local HARGS = {}

function R.write(tab)
  local args = HARGS
  for _, x in pairs(tab) do
    if x then
      local h, n = x.h, 0
      for f, _ in pairs(x.d) do
        local v = h[f]
        if v == nil then
          v = ''
        elseif type(v) == 'number' then
          if v == NOW then v = NOWS else v = s(v) end
        end
        args[n + 1] = f
        args[n + 2] = v
        n = n + 2
      end
      if n > 0 then redis.call('HSET', x.k, unpack(args, 1, n)) end
      if x.expire then redis.call('EXPIRE', x.k, TTL) end
    end
  end
end

function R.flush()
  R.sync()
  R.write(CV)
  R.write(AG)
  R.write(QU)
end

function R.channels(a)
  local l = {}
  for f, _ in pairs(a.h) do
    local ch = capch(f)
    if ch then l[#l + 1] = ch end
  end
  table.sort(l)
  return l
end

---------------------------------------------------------------------------
-- events

function R.aev(a, typ, d)
  redis.call('XADD', SP .. 'agent:' .. a .. ':events', 'MAXLEN', '~', SMAX, '*', 't', typ, 'd', d)
  redis.call('PUBLISH', KEVENTS, a)
end

local function jstr(k, v)
  if not v then return '' end
  return ',"' .. k .. '":"' .. v .. '"'
end

-- The conversation's JSON fragment (session, source, attributes) is kept
-- in the record in pieces of at most JCHUNK bytes, fields j1, j2, ... with
-- their number in jn. Whole, it is nearly always longer than the 64 bytes
-- up to which Redis keeps a hash in its compact encoding (a listpack), and
-- one long field turns the whole record into a full hash table: about
-- 650 bytes more per waiting conversation, and slower to read and write.
-- (A key of its own was tried: the extra commands to read it and expire
-- it cost more than the compact record saved.)
local JCHUNK = 64

-- setj writes fragment j into record c's fields.
function R.setj(c, j)
  local n = math.ceil(#j / JCHUNK)
  for i = 1, n do
    local f = 'j' .. i
    set(c, f, j:sub((i - 1) * JCHUNK + 1, i * JCHUNK))
  end
  set(c, 'jn', n)
  c.jv = j
end

-- j is the record's fragment, joined once per call. A record written
-- before the fragment was cut holds it whole in field j.
function R.j(c)
  if c.jv then return c.jv end
  local h = c.h
  local j = h.j
  if j == nil or j == '' then
    local n = num(h.jn)
    local parts = {}
    for i = 1, n do parts[i] = h['j' .. i] or '' end
    j = table.concat(parts)
  end
  c.jv = j
  return j
end

-- outbox appends a conversation event. x may name agent, queue, reason,
-- from_agent, to_agent, from_queue, to_queue, transfer, expires_at (text).
-- The entry is made by one concatenation: growing it piece by piece would
-- copy (and hash) the whole entry again for every optional field.
function R.outbox(ev, c, x)
  local h = c.h
  local seq = num(h.seq) + 1
  set(c, 'seq', seq)
  local tr, ex = '', ''
  if x.transfer ~= nil then tr = x.transfer and ',"transfer":true' or ',"transfer":false' end
  if x.expires_at then ex = ',"expires_at":' .. x.expires_at end
  redis.call('XADD', KOUTBOX, 'MAXLEN', '~', OMAX, '*', 'e', ev, 'd',
    '{"conversation":"' .. c.id .. '","agent":"' .. (x.agent or '') .. '","queue":"' .. (x.queue or h.q) ..
    '","channel":"' .. h.ch .. '",' .. R.j(c) .. ',"seq":' .. s(seq) .. ',"at":' .. NOWS ..
    jstr('reason', x.reason) .. jstr('from_agent', x.from_agent) .. jstr('to_agent', x.to_agent) ..
    jstr('from_queue', x.from_queue) .. jstr('to_queue', x.to_queue) .. tr .. ex .. '}')
end

-- outbox_agent appends an agent event (presence, logged_off).
function R.outbox_agent(ev, a, extra)
  redis.call('XADD', KOUTBOX, 'MAXLEN', '~', OMAX, '*', 'e', ev, 'd',
    '{"agent":"' .. a .. '"' .. extra .. ',"at":' .. NOWS .. '}')
end

function R.conv_event(a, typ, c, reason)
  if reason then
    R.aev(a, typ, '{"conversation":"' .. c.id .. '","reason":"' .. reason .. '"}')
  else
    R.aev(a, typ, '{"conversation":"' .. c.id .. '","queue":"' .. c.h.q .. '","channel":"' .. c.h.ch .. '"}')
  end
end

---------------------------------------------------------------------------
-- conversations: where they wait

-- wq is the queue whose waiting set the conversation is (or would be) in:
-- the target queue while a transfer to a queue is pending.
function R.wq(c)
  if c.h.xfer == 'queue' then return c.h.xto end
  return c.h.q
end

function R.wkey(c)
  if c.h.where == 'p' then return P .. 'a:' .. c.h.pref .. ':pref:' .. c.h.ch end
  return P .. 'q:' .. R.wq(c) .. ':wait:' .. c.h.ch
end

function R.unwait(c)
  local w = c.h.where
  if w == nil or w == '' then return end
  redis.call('ZREM', R.wkey(c), c.id)
  if w == 'p' then
    redis.call('ZREM', KTIMERS, 'p|' .. c.id)
    local a = R.agent(c.h.pref)
    if a then set(a, 'np', math.max(0, num(a.h.np) - 1)) end
  end
  set(c, 'where', '')
end

function R.enwait(c, w)
  set(c, 'where', w)
  redis.call('ZADD', R.wkey(c), zs(num(c.h.score)), c.id)
  if w == 'p' then
    local a = R.agent(c.h.pref)
    set(a, 'np', num(a.h.np) + 1)
  end
end

function R.maxwait_timer(c)
  local qr = R.queue(R.wq(c))
  if qr and num(qr.h.maxwait) > 0 then
    redis.call('ZADD', KTIMERS, num(c.h.enq) + num(qr.h.maxwait), 'w|' .. c.id)
    set(c, 'wt', '1')
  end
end

function R.drop_maxwait(c)
  if c.h.wt == '1' then
    redis.call('ZREM', KTIMERS, 'w|' .. c.id)
    set(c, 'wt', '')
  end
end

-- position and estimate of a waiting conversation: {position, estimate ms
-- or -1 when nothing is known yet}.
function R.position(c)
  if c.h.where == '' then return 0, -1 end
  local r = redis.call('ZRANK', R.wkey(c), c.id)
  if not r then return 0, -1 end
  local pos = r + 1
  local qr = R.queue(R.wq(c))
  if not qr then return pos, -1 end
  local ia = qr.h['ia:' .. c.h.ch]
  if ia and ia ~= '' then return pos, pos * num(ia) end
  local wt = qr.h['wt:' .. c.h.ch]
  if wt and wt ~= '' then return pos, num(wt) end
  return pos, -1
end

-- stats records an assignment in queue q on channel ch after a wait of
-- waited ms: the moving averages behind the wait estimate.
function R.stats(q, ch, waited)
  local qr = R.queue(q)
  if not qr then return end
  local h = qr.h
  local last = num(h['last:' .. ch])
  if last > 0 then
    -- No interval can be longer than this conversation's own wait: a
    -- longer gap means the queue stood empty, which says nothing about
    -- how fast it drains.
    local sample = math.min(NOW - last, waited)
    local ia = h['ia:' .. ch]
    if ia and ia ~= '' then sample = 0.8 * num(ia) + 0.2 * sample end
    set(qr, 'ia:' .. ch, math.floor(sample + 0.5))
  end
  set(qr, 'last:' .. ch, NOW)
  local wt = h['wt:' .. ch]
  local w = waited
  if wt and wt ~= '' then w = 0.8 * num(wt) + 0.2 * waited end
  set(qr, 'wt:' .. ch, math.floor(w + 0.5))
end

---------------------------------------------------------------------------
-- cooldowns: agents a conversation is not offered to for a while

function R.cooled(c, aid)
  if c.h.cool ~= '1' then return false end
  local u = redis.call('ZSCORE', P .. 'c:' .. c.id .. ':cooldown', aid)
  return u and tonumber(u) > NOW
end

function R.cooldown(c, a, untilms)
  redis.call('ZADD', P .. 'c:' .. c.id .. ':cooldown', untilms, a.id)
  local ak = P .. 'a:' .. a.id .. ':cooldown'
  redis.call('ZREMRANGEBYSCORE', ak, '-inf', NOW)
  redis.call('ZADD', ak, untilms, c.id)
  set(c, 'cool', '1')
  if num(a.h.cool) < untilms then set(a, 'cool', untilms) end
  if untilms < FAR then redis.call('ZADD', KTIMERS, untilms, 'k|' .. c.id .. '|' .. a.id) end
end

function R.uncool(c, a)
  redis.call('ZREM', P .. 'c:' .. c.id .. ':cooldown', a.id)
  local ak = P .. 'a:' .. a.id .. ':cooldown'
  redis.call('ZREM', ak, c.id)
  local r = redis.call('ZREVRANGE', ak, '0', '0', 'WITHSCORES')
  set(a, 'cool', r[2] and num(r[2]) or 0)
end

---------------------------------------------------------------------------
-- offers and holds

function R.offer(c, a)
  local ch = c.h.ch
  local q = R.wq(c)
  -- Only the queue's offer timeout is needed: read that one field unless
  -- the call has the record already (a missing queue reads as 0 either
  -- way, which means the default).
  local qr, off = QU[q], 0
  if qr == nil then
    off = num(redis.call('HGET', P .. 'q:' .. q, 'offer'))
  elseif qr then
    off = num(qr.h.offer)
  end
  local tmo = (off > 0) and off or DEF_OFFER
  R.unwait(c)
  set(a, 'load:' .. ch, num(a.h['load:' .. ch]) + 1)
  set(a, 'idle:' .. ch, NOW)
  R.touch(a, ch)
  redis.call('SADD', P .. 'a:' .. a.id .. ':convs', c.id)
  local oid = num(c.h.oid) + 1
  local exp = NOW + tmo
  set(c, 'oid', oid)
  set(c, 'oto', a.id)
  set(c, 'oexp', exp)
  local transfer = c.h.state == 'assigned'
  local from = ''
  if transfer then from = c.h.agent else set(c, 'state', 'offered') end
  local exps = s(exp)
  redis.call('ZADD', KTIMERS, zs(exp, exps), 'o|' .. c.id .. '|' .. s(oid))
  R.outbox('offered', c, { agent = a.id, queue = q, transfer = transfer, from_agent = transfer and from or nil, expires_at = exps })
  R.aev(a.id, 'Offer', '{"conversation":"' .. c.id .. '","queue":"' .. q .. '","channel":"' .. ch ..
    '","expires_at":' .. exps .. ',"transfer":' .. (transfer and 'true' or 'false') .. ',"from_agent":"' .. from .. '"}')
  OFFERS[#OFFERS + 1] = c.id
  OFFERS[#OFFERS + 1] = a.id
end

-- release takes one conversation off an agent's load on channel ch.
function R.release(a, cid, ch)
  local load = math.max(0, num(a.h['load:' .. ch]) - 1)
  set(a, 'load:' .. ch, load)
  if load == 0 then set(a, 'idle:' .. ch, NOW) end
  R.touch(a, ch)
  redis.call('SREM', P .. 'a:' .. a.id .. ':convs', cid)
end

-- end_offer closes the conversation's open offer and gives the offered
-- agent its capacity back; it returns that agent's record.
function R.end_offer(c)
  local aid = c.h.oto
  redis.call('ZREM', KTIMERS, 'o|' .. c.id .. '|' .. (c.h.oid or ''))
  set(c, 'oto', '')
  set(c, 'oexp', '')
  local a = R.agent(aid)
  if a then R.release(a, c.id, c.h.ch) end
  return a, aid
end

function R.release_hold(c)
  local a = R.agent(c.h.agent)
  if a then R.release(a, c.id, c.h.ch) end
  set(c, 'agent', '')
  return a
end

-- clear_xfer forgets a pending transfer (its offer already ended).
function R.clear_xfer(c)
  if c.h.xfer == 'queue' then
    R.unwait(c)
    R.drop_maxwait(c)
    local h = R.agent(c.h.agent)
    if h then R.uncool(c, h) end
  end
  set(c, 'xfer', '')
  set(c, 'xto', '')
  set(c, 'xenq', '')
end

function R.xfer_fields(c, aid)
  local to_q = nil
  if c.h.xfer == 'queue' then to_q = c.h.xto end
  return { agent = aid, from_agent = c.h.agent, to_agent = (c.h.xfer == 'agent') and c.h.xto or aid,
    from_queue = c.h.q, to_queue = to_q, queue = R.wq(c), transfer = true }
end

---------------------------------------------------------------------------
-- matching

-- match_conv offers a waiting conversation to the best eligible agent:
-- the preferred agent while it is being waited for, otherwise the
-- longest-idle free agent of the queue not in the conversation's cooldown.
function R.match_conv(c)
  local w = c.h.where
  if w == nil or w == '' then return end
  R.sync()
  local ch = c.h.ch
  if w == 'p' then
    local a = R.agent(c.h.pref)
    if a and R.fs(a, ch) and R.in_queue(a, c.h.q, ch) and not R.cooled(c, a.id) then R.offer(c, a) end
    return
  end
  local excl, n = nil, 0
  if c.h.cool == '1' then
    excl = {}
    for _, id in ipairs(redis.call('ZRANGEBYSCORE', P .. 'c:' .. c.id .. ':cooldown', '(' .. NOWS, '+inf')) do
      excl[id] = true
      n = n + 1
    end
  end
  local free = redis.call('ZRANGE', P .. 'q:' .. R.wq(c) .. ':free:' .. ch, '0', s(n))
  for i = 1, #free do
    local id = free[i]
    if not (excl and excl[id]) then
      local a = R.agent(id)
      if a then
        R.offer(c, a)
        return
      end
    end
  end
end

-- best_for finds the best conversation for agent a on channel ch: one
-- waiting for it as preferred agent, else the head of its queues by queue
-- priority, then band, then age. It returns id, priority, score and the
-- waiting set it is in.
function R.best_for(a, ch)
  if num(a.h.np) > 0 then
    local key = P .. 'a:' .. a.id .. ':pref:' .. ch
    local r = redis.call('ZRANGE', key, '0', '0')
    if r[1] then return r[1], FAR, 0, key end
  end
  -- An agent in a cooldown looks a little deeper into each queue (10
  -- entries) for a conversation it may have.
  local coolchk = num(a.h.cool) > NOW
  local best, bp, bs, bk = nil, nil, nil, nil
  local l = R.qc(a, ch)
  for j = 1, #l, 2 do
    local q, p = l[j], l[j + 1]
    if best and p < bp then break end
    local key = P .. 'q:' .. q .. ':wait:' .. ch
    local r = redis.call('ZRANGE', key, '0', coolchk and '9' or '0', 'WITHSCORES')
    for i = 1, #r, 2 do
      local id, sc = r[i], tonumber(r[i + 1])
      local ok = true
      if coolchk then
        local u = redis.call('ZSCORE', P .. 'a:' .. a.id .. ':cooldown', id)
        ok = not (u and tonumber(u) > NOW)
      end
      if ok then
        if best == nil or sc < bs then best, bp, bs, bk = id, p, sc, key end
        break
      end
    end
  end
  return best, bp, bs, bk
end

-- match_agent fills the agent's free capacity (on channel ch, or on every
-- channel) with the best waiting conversations.
function R.match_agent(a, ch)
  if not a then return end
  local chans = ch and { ch } or R.channels(a)
  for _ = 1, 64 do
    if a.h.presence ~= 'available' then return end
    local best, bp, bs, bk = nil, nil, nil, nil
    for i = 1, #chans do
      local c = chans[i]
      if R.fs(a, c) then
        local id, p, sc, key = R.best_for(a, c)
        if id and (best == nil or p > bp or (p == bp and sc < bs)) then best, bp, bs, bk = id, p, sc, key end
      end
    end
    if not best then return end
    local c = R.conv(best)
    if c and c.h.where ~= '' then
      R.offer(c, a)
    else
      -- A waiting set names a conversation that is not waiting (its
      -- record expired): drop the entry rather than loop on it.
      redis.call('ZREM', bk, best)
    end
  end
end

---------------------------------------------------------------------------
-- shared transitions

-- back puts a conversation whose offer ended back in its waiting set, in
-- the place it had; a conversation whose queue was deleted is cancelled.
function R.finish_record(c, state)
  set(c, 'state', state)
  set(c, 'ended', NOW)
  R.drop_maxwait(c)
  if c.h.cool == '1' then redis.call('DEL', P .. 'c:' .. c.id .. ':cooldown') end
  c.expire = true
end

-- back puts a conversation whose offer ended back in its waiting set, in
-- the place it had. When that queue was deleted meanwhile, a transfer to
-- it is dropped (the holder keeps the conversation) and any other
-- conversation is cancelled.
function R.back(c)
  if R.queue(R.wq(c)) then
    R.enwait(c, 'q')
    return
  end
  if c.h.state == 'assigned' then
    local fields = R.xfer_fields(c, '')
    fields.reason = 'queue_deleted'
    R.outbox('transfer_cancelled', c, fields)
    R.clear_xfer(c)
    return
  end
  R.finish_record(c, 'cancelled')
  R.outbox('cancelled', c, { reason = 'queue_deleted' })
end

-- outcome ends an offer that was declined or expired.
function R.outcome(c, aid, out)
  local transfer = c.h.state == 'assigned'
  local fields = transfer and R.xfer_fields(c, aid) or { agent = aid }
  local a = R.end_offer(c)
  set(c, 'last_a', aid)
  set(c, 'last_o', out)
  local away = false
  if a then
    if COOL > 0 then R.cooldown(c, a, NOW + COOL) end
    if out == 'expired' then
      local n = num(a.h.xrow) + 1
      set(a, 'xrow', n)
      if XLIMIT > 0 and n >= XLIMIT and a.h.presence == 'available' then
        set(a, 'presence', 'away')
        set(a, 'xrow', 0)
        R.touch(a)
        away = true
      end
    else
      set(a, 'xrow', 0)
    end
  end
  R.aev(aid, 'Offer_Cancelled', '{"conversation":"' .. c.id .. '","reason":"' .. out .. '"}')
  if transfer then
    R.outbox('transfer_' .. out, c, fields)
    if c.h.xfer == 'agent' then R.clear_xfer(c) else R.back(c) end
  else
    set(c, 'state', 'waiting')
    R.outbox(out, c, fields)
    R.back(c)
  end
  if away then
    R.aev(aid, 'Presence', '{"presence":"away","reason":"offers_expired"}')
    R.outbox_agent('presence', aid, ',"presence":"away","reason":"offers_expired"')
  end
  R.match_conv(c)
  if a then R.match_agent(a, c.h.ch) end
end

-- take_back returns an offer whose agent went away (offline, logged off).
function R.take_back(c, a, reason)
  local transfer = c.h.state == 'assigned'
  local fields = transfer and R.xfer_fields(c, a.id) or { agent = a.id }
  fields.reason = reason
  R.end_offer(c)
  R.aev(a.id, 'Offer_Cancelled', '{"conversation":"' .. c.id .. '","reason":"' .. reason .. '"}')
  if transfer and c.h.xfer == 'agent' then
    R.outbox('transfer_cancelled', c, fields)
    R.clear_xfer(c)
    return
  end
  if not transfer then set(c, 'state', 'waiting') end
  R.outbox('requeued', c, fields)
  R.back(c)
  R.match_conv(c)
end

-- cancel_transfer ends a pending transfer of a held conversation.
function R.cancel_transfer(c, ev, reason)
  local fields = R.xfer_fields(c, c.h.oto or '')
  fields.reason = reason
  local b = nil
  if c.h.oto and c.h.oto ~= '' then
    b = R.end_offer(c)
    R.aev(fields.agent, 'Offer_Cancelled', '{"conversation":"' .. c.id .. '","reason":"' .. reason .. '"}')
  end
  R.outbox(ev, c, fields)
  R.clear_xfer(c)
  return b
end

function R.go_offline(a, reason)
  set(a, 'presence', 'offline')
  R.touch(a)
  redis.call('ZREM', KTIMERS, 'h|' .. a.id)
  for _, id in ipairs(redis.call('SMEMBERS', P .. 'a:' .. a.id .. ':convs')) do
    local c = R.conv(id)
    if c and c.h.oto == a.id then R.take_back(c, a, reason) end
  end
end

function R.set_available(a)
  set(a, 'presence', 'available')
  set(a, 'xrow', 0)
  for _, ch in ipairs(R.channels(a)) do set(a, 'idle:' .. ch, NOW) end
  R.touch(a)
end

-- set_queues makes the agent's queues exactly list (queue ids that exist).
function R.set_queues(a, list)
  local want = {}
  for _, q in ipairs(list) do want[q] = true end
  local have = {}
  for _, q in ipairs(redis.call('SMEMBERS', P .. 'a:' .. a.id .. ':queues')) do have[q] = true end
  for q, _ in pairs(have) do
    if not want[q] then
      redis.call('SREM', P .. 'a:' .. a.id .. ':queues', q)
      redis.call('SREM', P .. 'q:' .. q .. ':agents', a.id)
      local qr = R.queue(q)
      if qr then
        for ch, _ in pairs(qr.ch) do
          redis.call('ZREM', P .. 'a:' .. a.id .. ':qc:' .. ch, q)
          redis.call('ZREM', P .. 'q:' .. q .. ':free:' .. ch, a.id)
        end
      end
    end
  end
  for q, _ in pairs(want) do
    if not have[q] then
      local qr = R.queue(q)
      redis.call('SADD', P .. 'a:' .. a.id .. ':queues', q)
      redis.call('SADD', P .. 'q:' .. q .. ':agents', a.id)
      for ch, _ in pairs(qr.ch) do
        redis.call('ZADD', P .. 'a:' .. a.id .. ':qc:' .. ch, num(qr.h.prio), q)
        local f = R.fs(a, ch)
        if f then redis.call('ZADD', P .. 'q:' .. q .. ':free:' .. ch, f, a.id) end
      end
    end
  end
  a.qc = {}
end

function R.check_queues(list, field)
  for i, q in ipairs(list) do
    if not R.queue(q) then fail(ENOTFOUND, field .. '[' .. (i - 1) .. ']', 'queue ' .. q .. ' does not exist') end
  end
end

function R.must_conv(id)
  local c = R.conv(id)
  if not c then fail(ENOTFOUND, 'id', 'conversation ' .. id .. ' does not exist') end
  return c
end

function R.must_agent(id, field)
  local a = R.agent(id)
  if not a then fail(ENOTFOUND, field, 'agent ' .. id .. ' does not exist') end
  return a
end

function R.must_hold(c, aid)
  if c.h.state ~= 'assigned' or c.h.agent ~= aid then
    fail(ECONFLICT, 'agent', 'conversation ' .. c.id .. ' is not held by agent ' .. aid)
  end
end

---------------------------------------------------------------------------
-- operations

local OPS = {}
local RES = {}

-- put_queue: id, mode (create|update|put), name, prio, offer ms, maxwait ms, pref ms, channels (comma list)
OPS.put_queue = function()
  local id, mode = arg(1), arg(2)
  local qr = R.queue(id)
  if mode == 'create' and qr then fail(ECONFLICT, 'id', 'queue ' .. id .. ' already exists') end
  if mode == 'update' and not qr then fail(ENOTFOUND, 'id', 'queue ' .. id .. ' does not exist') end
  local newch = {}
  for ch in string.gmatch(arg(8), '[^,]+') do newch[ch] = true end
  local oldch = qr and qr.ch or {}
  for ch, _ in pairs(oldch) do
    if not newch[ch] and redis.call('ZCARD', P .. 'q:' .. id .. ':wait:' .. ch) > 0 then
      fail(ECONFLICT, 'channels', 'queue ' .. id .. ' has conversations waiting on channel ' .. ch)
    end
  end
  if not qr then
    qr = { id = id, h = {}, d = {}, k = P .. 'q:' .. id, ch = {} }
    QU[id] = qr
    redis.call('SADD', P .. 'queues', id)
  end
  local prio = tonumber(arg(4))
  local reprio = num(qr.h.prio) ~= prio
  set(qr, 'name', arg(3))
  set(qr, 'prio', prio)
  set(qr, 'offer', tonumber(arg(5)))
  set(qr, 'maxwait', tonumber(arg(6)))
  set(qr, 'pref', tonumber(arg(7)))
  set(qr, 'chans', arg(8))
  qr.ch = newch
  local changed = reprio
  for ch, _ in pairs(newch) do if not oldch[ch] then changed = true end end
  for ch, _ in pairs(oldch) do if not newch[ch] then changed = true end end
  if not changed then return end
  for _, aid in ipairs(redis.call('SMEMBERS', P .. 'q:' .. id .. ':agents')) do
    local a = R.agent(aid)
    for ch, _ in pairs(oldch) do
      if not newch[ch] then redis.call('ZREM', P .. 'a:' .. aid .. ':qc:' .. ch, id) end
    end
    for ch, _ in pairs(newch) do
      redis.call('ZADD', P .. 'a:' .. aid .. ':qc:' .. ch, prio, id)
      if not oldch[ch] and a then
        local f = R.fs(a, ch)
        if f then redis.call('ZADD', P .. 'q:' .. id .. ':free:' .. ch, f, aid) end
      end
    end
    if a then a.qc = {} end
  end
  for ch, _ in pairs(oldch) do
    if not newch[ch] then redis.call('DEL', P .. 'q:' .. id .. ':free:' .. ch) end
  end
end

OPS.delete_queue = function()
  local id = arg(1)
  local qr = R.queue(id)
  if not qr then fail(ENOTFOUND, 'id', 'queue ' .. id .. ' does not exist') end
  for ch, _ in pairs(qr.ch) do
    local n = redis.call('ZCARD', P .. 'q:' .. id .. ':wait:' .. ch)
    if n > 0 then fail(ECONFLICT, 'id', 'queue ' .. id .. ' has ' .. n .. ' conversations waiting on ' .. ch) end
  end
  for _, aid in ipairs(redis.call('SMEMBERS', P .. 'q:' .. id .. ':agents')) do
    redis.call('SREM', P .. 'a:' .. aid .. ':queues', id)
    for ch, _ in pairs(qr.ch) do redis.call('ZREM', P .. 'a:' .. aid .. ':qc:' .. ch, id) end
  end
  for ch, _ in pairs(qr.ch) do redis.call('DEL', P .. 'q:' .. id .. ':free:' .. ch) end
  redis.call('DEL', qr.k, P .. 'q:' .. id .. ':agents')
  redis.call('SREM', P .. 'queues', id)
  QU[id] = false
end

-- put_agent: id, presence ('' keeps), ncap, (ch, n)*, nq (-1 keeps), queue*
OPS.put_agent = function()
  local id, pres = arg(1), arg(2)
  local ncap = tonumber(arg(3))
  local i = 4
  local caps = {}
  for _ = 1, ncap do
    caps[#caps + 1] = { arg(i), tonumber(arg(i + 1)) }
    i = i + 2
  end
  local nq = tonumber(arg(i))
  i = i + 1
  local qs = nil
  if nq >= 0 then
    qs = {}
    for _ = 1, nq do
      qs[#qs + 1] = arg(i)
      i = i + 1
    end
    R.check_queues(qs, 'queues')
  end
  local a = R.agent(id)
  local full = arg(i) == 'full' -- the capacity list replaces the old one
  if not a and not full then fail(ENOTFOUND, 'id', 'agent ' .. id .. ' does not exist') end
  if a then
    local keep = {}
    for _, e in ipairs(caps) do
      keep[e[1]] = true
      if num(a.h['load:' .. e[1]]) > e[2] then
        fail(ECONFLICT, 'capacity.' .. e[1], 'agent ' .. id .. ' holds ' .. num(a.h['load:' .. e[1]]) ..
          ' conversations on ' .. e[1] .. ', more than ' .. e[2])
      end
    end
    if full then
      for _, ch in ipairs(R.channels(a)) do
        if not keep[ch] and num(a.h['load:' .. ch]) > 0 then
          fail(ECONFLICT, 'capacity.' .. ch, 'agent ' .. id .. ' holds conversations on ' .. ch)
        end
      end
    end
  end
  -- writes from here
  if not a then a = R.newagent(id) end
  local keep = {}
  for _, e in ipairs(caps) do
    keep[e[1]] = true
    if a.h['cap:' .. e[1]] == nil then
      set(a, 'load:' .. e[1], 0)
      set(a, 'idle:' .. e[1], NOW)
    end
    set(a, 'cap:' .. e[1], e[2])
  end
  if full then
    for _, ch in ipairs(R.channels(a)) do
      if not keep[ch] then set(a, 'cap:' .. ch, 0) end
    end
  end
  if qs then R.set_queues(a, qs) end
  if pres ~= '' and pres ~= a.h.presence then
    if pres == 'offline' then R.go_offline(a, 'offline')
    elseif pres == 'available' then R.set_available(a)
    else
      set(a, 'presence', pres)
      R.touch(a)
    end
  else
    R.touch(a)
  end
  R.match_agent(a)
end

-- queues: id, mode (set|join|leave), queue*
OPS.queues = function()
  local id, mode = arg(1), arg(2)
  local list = {}
  local i = 3
  while arg(i) do
    list[#list + 1] = arg(i)
    i = i + 1
  end
  local a = R.must_agent(id, 'id')
  if mode ~= 'leave' then R.check_queues(list, 'queues') end
  if mode ~= 'set' then
    local cur = {}
    for _, q in ipairs(redis.call('SMEMBERS', P .. 'a:' .. id .. ':queues')) do cur[q] = true end
    for _, q in ipairs(list) do cur[q] = (mode == 'join') or nil end
    list = {}
    for q, _ in pairs(cur) do list[#list + 1] = q end
  end
  R.set_queues(a, list)
  R.match_agent(a)
end

OPS.presence = function()
  local id, pres = arg(1), arg(2)
  local a = R.must_agent(id, 'id')
  if a.h.presence == pres then return end
  if pres == 'offline' then
    R.go_offline(a, 'offline')
    return
  end
  if pres == 'available' then
    R.set_available(a)
    R.match_agent(a)
  else
    set(a, 'presence', pres)
    R.touch(a)
  end
end

OPS.heartbeat = function()
  local id = arg(1)
  local a = R.must_agent(id, 'id')
  set(a, 'hb', NOW)
  if GRACE > 0 and a.h.presence ~= 'offline' then
    redis.call('ZADD', KTIMERS, NOW + GRACE, 'h|' .. id)
  end
end

OPS.logoff = function()
  local id = arg(1)
  local a = R.must_agent(id, 'id')
  R.go_offline(a, 'logged_off')
  local held = {}
  for _, cid in ipairs(redis.call('SMEMBERS', P .. 'a:' .. id .. ':convs')) do
    local c = R.conv(cid)
    if c and c.h.state == 'assigned' and c.h.agent == id then
      held[#held + 1] = '"' .. cid .. '"'
      if LOGOFF == 'requeue' then
        if c.h.xfer ~= '' then
          local b = R.cancel_transfer(c, 'transfer_cancelled', 'logged_off')
          if b then R.match_agent(b, c.h.ch) end
        end
        R.release_hold(c)
        R.conv_event(id, 'Conversation_Ended', c, 'logged_off')
        set(c, 'state', 'waiting')
        set(c, 'enq', NOW)
        set(c, 'score', NOW)
        R.outbox('requeued', c, { agent = id, reason = 'logged_off' })
        R.back(c)
        if c.h.where ~= '' then R.maxwait_timer(c) end
        R.match_conv(c)
      end
    end
  end
  table.sort(held)
  R.outbox_agent('logged_off', id, ',"conversations":[' .. table.concat(held, ',') .. '],"policy":"' .. LOGOFF .. '"')
end

-- create: id, queue, channel, priority (0|1), preferred agent, json fragment
OPS.create = function()
  local id, q, ch, prio, pref, j = arg(1), arg(2), arg(3), arg(4), arg(5), arg(6)
  local qr = R.queue(q)
  if not qr then fail(ENOTFOUND, 'queue', 'queue ' .. q .. ' does not exist') end
  if not qr.ch[ch] then fail(EINVALID, 'channel', 'queue ' .. q .. ' does not serve channel ' .. ch) end
  local old = R.conv(id)
  if old and not TERMINAL[old.h.state] then
    fail(ECONFLICT, 'id', 'conversation ' .. id .. ' already exists (' .. old.h.state .. ')')
  end
  local seq, oid = 0, 0
  if old then
    -- A conversation that ended may come back (a long-running chat the
    -- customer wrote to again); its sequence goes on, so consumers never
    -- see a (conversation, seq) pair twice.
    seq, oid = num(old.h.seq), num(old.h.oid)
    redis.call('DEL', old.k, P .. 'c:' .. id .. ':cooldown')
  end
  local band = (prio == '1') and 1 or 2
  -- Every field is set (and written); the ones left nil only size the
  -- table for the fields later steps add.
  local c = {
    id = id,
    h = { state = 'waiting', q = q, ch = ch, prio = prio, pref = pref, created = NOW, enq = NOW,
      score = band * BAND + NOW, seq = seq, oid = oid, where = '', oto = '', agent = '', xfer = '', xto = '',
      oexp = nil, last_a = nil, last_o = nil, wt = nil, assigned = nil, ended = nil, cool = nil, xenq = nil,
      jn = nil, j1 = nil, j2 = nil },
    d = { state = true, q = true, ch = true, prio = true, pref = true, created = true, enq = true,
      score = true, seq = true, oid = true, where = true, oto = true, agent = true, xfer = true, xto = true },
    k = P .. 'c:' .. id,
  }
  R.setj(c, j)
  CV[id] = c
  local pa = (pref ~= '') and R.agent(pref) or false
  local pin = pa and R.in_queue(pa, q, ch)
  if pin and R.fs(pa, ch) then
    R.offer(c, pa)
  elseif pin and pa.h.presence ~= 'offline' and num(qr.h.pref) > 0 then
    R.enwait(c, 'p')
    redis.call('ZADD', KTIMERS, NOW + num(qr.h.pref), 'p|' .. id)
  else
    R.enwait(c, 'q')
    R.match_conv(c)
  end
  if c.h.state == 'waiting' then R.outbox('queued', c, {}) end
  R.maxwait_timer(c)
  local pos, est = R.position(c)
  RES = { c.h.state, c.h.oto or '', pos, est, num(c.h.oexp) }
end

function R.offer_op(out)
  local cid, aid = arg(1), arg(2)
  local c = R.must_conv(cid)
  if c.h.oto ~= aid then
    if c.h.last_a == aid and c.h.last_o == out then return end -- a repeat
    fail(ECONFLICT, 'agent', 'conversation ' .. cid .. ' is not offered to agent ' .. aid)
  end
  R.outcome(c, aid, out)
end

OPS.decline = function() R.offer_op('declined') end
OPS.expire = function() R.offer_op('expired') end

OPS.accept = function()
  local cid, aid = arg(1), arg(2)
  local c = R.must_conv(cid)
  if c.h.oto ~= aid then
    if c.h.state == 'assigned' and c.h.agent == aid then return end -- a repeat
    fail(ECONFLICT, 'agent', 'conversation ' .. cid .. ' is not offered to agent ' .. aid)
  end
  local a = R.agent(aid)
  redis.call('ZREM', KTIMERS, 'o|' .. cid .. '|' .. c.h.oid)
  set(c, 'oto', '')
  set(c, 'oexp', '')
  set(c, 'last_a', aid)
  set(c, 'last_o', 'accepted')
  if a then set(a, 'xrow', 0) end
  local ch = c.h.ch
  if c.h.state == 'offered' then
    set(c, 'state', 'assigned')
    set(c, 'agent', aid)
    set(c, 'assigned', NOW)
    R.drop_maxwait(c)
    R.stats(c.h.q, ch, NOW - num(c.h.enq))
    R.outbox('accepted', c, { agent = aid })
    R.conv_event(aid, 'Assigned', c)
    return
  end
  -- a transfer
  local fields = R.xfer_fields(c, aid)
  local from = c.h.agent
  local fa = R.agent(from)
  if c.h.xfer == 'queue' then
    R.stats(c.h.xto, ch, NOW - num(c.h.xenq))
    R.drop_maxwait(c)
    if fa then R.uncool(c, fa) end
    set(c, 'q', c.h.xto)
  end
  if fa then R.release(fa, cid, ch) end
  R.conv_event(from, 'Conversation_Ended', c, 'transferred')
  set(c, 'agent', aid)
  set(c, 'assigned', NOW)
  set(c, 'xfer', '')
  set(c, 'xto', '')
  set(c, 'xenq', '')
  fields.to_queue = c.h.q
  R.outbox('transferred', c, fields)
  R.conv_event(aid, 'Assigned', c)
  R.match_agent(fa, ch)
end

function R.finish(how)
  local c = R.must_conv(arg(1))
  local st = c.h.state
  if TERMINAL[st] then return end
  local reason = (how == 'cancelled') and 'customer_left' or 'ended'
  local freed = {}
  R.unwait(c)
  if st == 'assigned' and c.h.xfer ~= '' then
    freed[#freed + 1] = R.cancel_transfer(c, (how == 'cancelled') and 'transfer_abandoned' or 'transfer_cancelled', reason)
  end
  if st == 'offered' then
    local b, bid = R.end_offer(c)
    freed[#freed + 1] = b
    R.aev(bid, 'Offer_Cancelled', '{"conversation":"' .. c.id .. '","reason":"' .. reason .. '"}')
    R.finish_record(c, how)
    R.outbox(how, c, { agent = bid, reason = reason })
  elseif st == 'waiting' then
    R.finish_record(c, how)
    R.outbox(how, c, { reason = reason })
  else
    local holder = c.h.agent
    freed[#freed + 1] = R.release_hold(c)
    R.conv_event(holder, 'Conversation_Ended', c, reason)
    R.finish_record(c, 'ended')
    set(c, 'agent', holder)
    R.outbox('ended', c, { agent = holder, reason = reason })
  end
  for _, a in ipairs(freed) do
    if a then R.match_agent(a, c.h.ch) end
  end
end

OPS.finish = function() R.finish(arg(2)) end

-- transfer: id, from, kind (agent|queue), target
OPS.transfer = function()
  local cid, from, kind, to = arg(1), arg(2), arg(3), arg(4)
  local c = R.must_conv(cid)
  R.must_hold(c, from)
  if c.h.xfer ~= '' then
    if c.h.xfer == kind and c.h.xto == to then return end -- a repeat
    fail(ECONFLICT, 'id', 'a transfer of conversation ' .. cid .. ' is already pending')
  end
  local ch = c.h.ch
  if kind == 'agent' then
    if to == from then fail(EINVALID, 'to_agent', 'agent ' .. to .. ' already holds conversation ' .. cid) end
    local b = R.must_agent(to, 'to_agent')
    if b.h.presence ~= 'available' then
      fail(ECONFLICT, 'to_agent', 'agent ' .. to .. ' is ' .. b.h.presence)
    end
    if not R.fs(b, ch) then
      fail(ECONFLICT, 'to_agent', 'agent ' .. to .. ' has no free capacity on ' .. ch)
    end
    set(c, 'xfer', 'agent')
    set(c, 'xto', to)
    R.outbox('transfer_initiated', c, { agent = from, from_agent = from, to_agent = to, from_queue = c.h.q, transfer = true })
    R.offer(c, b)
    return
  end
  local qr = R.queue(to)
  if not qr then fail(ENOTFOUND, 'to_queue', 'queue ' .. to .. ' does not exist') end
  if not qr.ch[ch] then fail(EINVALID, 'to_queue', 'queue ' .. to .. ' does not serve channel ' .. ch) end
  set(c, 'xfer', 'queue')
  set(c, 'xto', to)
  set(c, 'xenq', NOW)
  set(c, 'score', ((c.h.prio == '1') and 1 or 2) * BAND + NOW)
  R.cooldown(c, R.agent(from), FAR)
  R.outbox('transfer_initiated', c, { agent = from, from_agent = from, from_queue = c.h.q, to_queue = to, queue = to, transfer = true })
  R.enwait(c, 'q')
  if num(qr.h.maxwait) > 0 then
    redis.call('ZADD', KTIMERS, NOW + num(qr.h.maxwait), 'w|' .. cid)
    set(c, 'wt', '1')
  end
  R.match_conv(c)
end

-- requeue: id, head (0|1)
OPS.requeue = function()
  local cid, head = arg(1), arg(2) == '1'
  local c = R.must_conv(cid)
  local st = c.h.state
  if TERMINAL[st] then fail(ECONFLICT, 'id', 'conversation ' .. cid .. ' is ' .. st) end
  if st == 'assigned' and c.h.xfer ~= '' then
    fail(ECONFLICT, 'id', 'a transfer of conversation ' .. cid .. ' is pending')
  end
  if not R.queue(c.h.q) then fail(ENOTFOUND, 'queue', 'queue ' .. c.h.q .. ' does not exist') end
  local reason = head and 'priority_requeue' or 'requeue'
  local band = head and 0 or ((c.h.prio == '1') and 1 or 2)
  if st == 'waiting' then
    if not head or c.h.where ~= 'q' or num(c.h.score) < BAND then return end
    R.unwait(c)
    set(c, 'score', num(c.h.enq))
    R.outbox('requeued', c, { reason = reason })
    R.enwait(c, 'q')
    return
  end
  local freed
  if st == 'offered' then
    local b, bid = R.end_offer(c)
    freed = b
    R.aev(bid, 'Offer_Cancelled', '{"conversation":"' .. cid .. '","reason":"requeued"}')
    R.outbox('requeued', c, { agent = bid, reason = reason })
  else
    local holder = c.h.agent
    freed = R.release_hold(c)
    R.conv_event(holder, 'Conversation_Ended', c, 'requeued')
    if freed and COOL > 0 then R.cooldown(c, freed, NOW + COOL) end
    R.outbox('requeued', c, { agent = holder, reason = reason })
  end
  R.drop_maxwait(c)
  set(c, 'state', 'waiting')
  set(c, 'enq', NOW)
  set(c, 'score', band * BAND + NOW)
  R.enwait(c, 'q')
  R.maxwait_timer(c)
  R.match_conv(c)
  if freed then R.match_agent(freed, c.h.ch) end
end

function R.fire(m)
  local kind = m:sub(1, 1)
  local rest = m:sub(3)
  if kind == 'o' then
    local cid, oid = rest:match('^(.*)|(%d+)$')
    local c = cid and R.conv(cid)
    if c and c.h.oid == oid and c.h.oto and c.h.oto ~= '' then R.outcome(c, c.h.oto, 'expired') end
  elseif kind == 'p' then
    local c = R.conv(rest)
    if c and c.h.where == 'p' then
      R.unwait(c)
      R.back(c)
      R.match_conv(c)
    end
  elseif kind == 'k' then
    local cid = rest:match('^(.*)|')
    local c = cid and R.conv(cid)
    if c and c.h.where == 'q' then R.match_conv(c) end
  elseif kind == 'w' then
    local c = R.conv(rest)
    if not c then return end
    set(c, 'wt', '')
    if c.h.where ~= '' then
      if c.h.state == 'waiting' then
        R.unwait(c)
        R.finish_record(c, 'timed_out')
        R.outbox('timed_out', c, { reason = 'max_wait' })
      else
        local fields = R.xfer_fields(c, '')
        fields.reason = 'max_wait'
        R.outbox('transfer_expired', c, fields)
        R.clear_xfer(c)
      end
    elseif c.h.oto and c.h.oto ~= '' then
      -- Offered when the wait ran out: look again once the offer is over.
      redis.call('ZADD', KTIMERS, num(c.h.oexp) + 1, m)
      set(c, 'wt', '1')
    end
  elseif kind == 'h' then
    local a = R.agent(rest)
    if a and a.h.presence ~= 'offline' and num(a.h.hb) + GRACE <= NOW then
      R.go_offline(a, 'heartbeat')
      R.aev(a.id, 'Presence', '{"presence":"offline","reason":"heartbeat"}')
      R.outbox_agent('presence', a.id, ',"presence":"offline","reason":"heartbeat"')
    end
  end
end

-- tick: batch size. Fires every timer due, each exactly once: a timer is
-- removed in the same script that applies it.
OPS.tick = function()
  local batch = tonumber(arg(1))
  local due = redis.call('ZRANGEBYSCORE', KTIMERS, '-inf', zs(NOW, NOWS), 'LIMIT', '0', batch)
  for _, m in ipairs(due) do
    redis.call('ZREM', KTIMERS, m)
    R.fire(m)
  end
  RES = { #due }
end

---------------------------------------------------------------------------

-- begin sets the call's values and forgets whatever an earlier call in
-- the same library left behind.
local function begin(argv)
  A = argv
  OP = argv[1]
  P = argv[2]
  SP = argv[3]
  SMAX = argv[4]
  OMAX = argv[5]
  NOW = tonumber(argv[6])
  DEF_OFFER = tonumber(argv[7])
  COOL = tonumber(argv[8])
  XLIMIT = tonumber(argv[9])
  LOGOFF = argv[10]
  TTL = tonumber(argv[11])
  GRACE = tonumber(argv[12])
  KTIMERS = P .. 'timers'
  KOUTBOX = P .. 'outbox'
  KEVENTS = SP .. 'agent-events'
  NOWS = s(NOW)
  OFFERS = {}
  CV, AG, QU = {}, {}, {}
  DIRTY = {}
  RES = {}
end

local function main(argv)
  begin(argv)
  local f = OPS[OP]
  if not f then return { 'err', 'internal', '', 'unknown operation ' .. tostring(OP) } end
  local ok, e = pcall(f)
  if not ok then
    if type(e) == 'table' and e.code then return { 'err', e.code, e.field or '', e.msg or '' } end
    error(e)
  end
  R.flush()
  local out = { 'ok', #RES }
  for _, v in ipairs(RES) do out[#out + 1] = v end
  local n = #out
  for i = 1, #OFFERS do out[n + i] = OFFERS[i] end
  return out
end

-- engine.go appends the entry point: "return main(ARGV)" for EVAL, or the
-- registration of main as a Redis Function.
