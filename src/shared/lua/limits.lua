-- The limits llmgate holds across instances, in one script with two modes.
--
-- ARGV[1]: 'admit' or 'settle'. ARGV[2]: now, in milliseconds since the epoch. Both modes
-- take a batch of requests; KEYS holds their keys, request after request.
--
-- admit: ARGV[3] is the number of requests; then, for each, its slot id, its copies c, its
-- number of checks k and 3k values. Each request is held to every limit it names, atomically:
-- either every check passes and all of them count it, or nothing changes and the first refusal
-- is told. A request of c > 1 copies is a lease: up to c requests admitted in turn (slots
-- `<slot id>:1` to `:c`), as many as fit.
-- Check i's kind, limit and amount:
--   R  requests in the sliding minute   (limit: requests)
--   T  tokens in the sliding minute     (limit: tokens; amount: tokens reserved now)
--   P  requests in flight               (limit: slots; amount: the slot's lifetime in ms)
--   B  spend against a budget           (limit: USD; amount: the spend to start from if the
--                                         counter does not exist yet)
-- Windows are hashes of per-second buckets (see `read_window`). A bucket leaves the window 61 s
-- after its second began, so no event is forgotten sooner than 60 s after it happened.
-- Returns one reply per request: {0, second, used_1, ..., used_k, copies} when admitted (each
-- check's use before its first copy, and the copies admitted), else {i, retry_after_ms, used}
-- for the first check that refused. Numbers
-- go back as integers (budgets as the counter's string): making strings costs more in Lua
-- than anything else the script does.
--
-- settle: ends admitted requests: frees their slots, replaces reserved tokens by the tokens
-- used, and adds their cost to the budget counters. From ARGV[4], four values per key (step
-- i at ARGV[4i]): its kind and three values:
--   P  free a slot: (its id, unused, unused)
--   T  tokens: (used - reserved, second, used): the change goes to the bucket of the second
--      the request was admitted in; if that bucket has left the window the reservation is
--      gone with it, and the used tokens count now instead
--   S  spend: (USD, unused, unused), added only to a counter that exists: one that expired
--      starts again from the database's figure at the next admission
-- Returns 0.
--
-- A batch often holds many requests of one busy key. Each key is read once per call, the
-- requests are decided in turn against what the call has counted so far, and each key is
-- written once at the end, so a batch costs a few commands per key, not per request.

local mode = ARGV[1]
local now = tonumber(ARGV[2])
local second = math.floor(now / 1000)

-- Remembers `key` in `list` the first time it is seen, so writes follow a fixed order.
local function note(list, seen, key)
  if seen[key] == nil then
    list[#list + 1] = key
  end
end

-- A window hash keeps its total in field `sum` and its oldest second in `min`, so a read
-- takes two fields; the buckets are walked only when the oldest one has left the window.
local function read_window(key)
  local head = redis.call('HMGET', key, 'sum', 'min')
  local used, oldest = tonumber(head[1] or '0'), tonumber(head[2])
  if oldest == nil or oldest > second - 61 then return used, oldest end
  local fields = redis.call('HGETALL', key)
  used, oldest = 0, nil
  for j = 1, #fields, 2 do
    local s = tonumber(fields[j])
    if s ~= nil then
      if s <= second - 61 then
        redis.call('HDEL', key, fields[j])
      else
        used = used + tonumber(fields[j + 1])
        if oldest == nil or s < oldest then oldest = s end
      end
    end
  end
  if oldest == nil then
    redis.call('DEL', key)
  else
    redis.call('HSET', key, 'sum', used, 'min', oldest)
  end
  return used, oldest
end

-- Adds `n` to the bucket of second `at`, without touching `sum`; a bucket's first count
-- renews the window's lifetime.
local function add_to_bucket(key, at, n)
  if redis.call('HINCRBY', key, at, n) == n then redis.call('EXPIRE', key, 62) end
end

local function frees_in(oldest)
  if oldest == nil then return 1000 end
  return math.max((oldest + 61) * 1000 - now, 1)
end

-- What this call has read and counted, by key.
local windows, window_order = {}, {}   -- {used, oldest, added}
local slot_sets, slot_order = {}, {}   -- {held, members = {score, id, ...}, life}
local budgets = {}                      -- spend so far (a string)

local function window(key)
  local w = windows[key]
  if w == nil then
    local used, oldest = read_window(key)
    w = {used = used, oldest = oldest, added = 0}
    note(window_order, windows, key)
    windows[key] = w
  end
  return w
end

-- Slots past their expiry (held by an instance that died) are not counted.
local function slot_set(key)
  local s = slot_sets[key]
  if s == nil then
    s = {held = redis.call('ZCOUNT', key, '(' .. now, '+inf'), members = {}, life = 0}
    note(slot_order, slot_sets, key)
    slot_sets[key] = s
  end
  return s
end

local function budget(key, start)
  local spent = budgets[key]
  if spent == nil then
    spent = redis.call('GET', key)
    if not spent then
      redis.call('SET', key, start, 'EX', 86400)
      spent = start
    end
    budgets[key] = spent
  end
  return spent
end

-- Decides one request whose checks are KEYS[first_key ..] and ARGV[first_arg ..] (three values
-- each), holding parallel slot `slot`, and counts it in this call's state when admitted.
local function admit_one(first_key, first_arg, k, slot)
  local reply = {0, second}
  for i = 1, k do
    local at = first_arg + 3 * (i - 1)
    local kind, limit, amount = ARGV[at], tonumber(ARGV[at + 1]), ARGV[at + 2]
    local key = KEYS[first_key + i - 1]
    local used = 0
    if kind == 'R' then
      local w = window(key)
      used = w.used
      if used + 1 > limit then return {i, frees_in(w.oldest), used} end
    elseif kind == 'T' then
      local w = window(key)
      used = w.used
      if used >= limit or used + tonumber(amount) > limit then
        return {i, frees_in(w.oldest), used}
      end
    elseif kind == 'P' then
      used = slot_set(key).held
      if used >= limit then
        -- Clears out expired slots, which refusals are the moment to notice.
        redis.call('ZREMRANGEBYSCORE', key, '-inf', now)
        return {i, 1000, used}
      end
    elseif kind == 'B' then
      used = budget(key, amount)
      if tonumber(used) >= limit then return {i, 0, used} end
    end
    reply[#reply + 1] = used
  end

  for i = 1, k do
    local at = first_arg + 3 * (i - 1)
    local kind, amount = ARGV[at], ARGV[at + 2]
    local key = KEYS[first_key + i - 1]
    if kind == 'R' or kind == 'T' then
      local n = 1
      if kind == 'T' then n = tonumber(amount) end
      local w = windows[key]
      w.used = w.used + n
      w.added = w.added + n
    elseif kind == 'P' then
      local s = slot_sets[key]
      local life = tonumber(amount)
      s.held = s.held + 1
      s.members[#s.members + 1] = now + life
      s.members[#s.members + 1] = slot
      if life > s.life then s.life = life end
    end
  end
  return reply
end

-- Admits up to `copies` copies of one request in turn: one alone holds slot `slot`, copy c of
-- a lease holds `<slot>:c`. The reply is the first copy's, with the number admitted appended.
local function admit_copies(first_key, first_arg, k, slot, copies)
  if copies == 1 then
    local reply = admit_one(first_key, first_arg, k, slot)
    if reply[1] == 0 then reply[#reply + 1] = 1 end
    return reply
  end
  local reply = admit_one(first_key, first_arg, k, slot .. ':1')
  if reply[1] ~= 0 then return reply end
  local admitted = 1
  while admitted < copies do
    if admit_one(first_key, first_arg, k, slot .. ':' .. (admitted + 1))[1] ~= 0 then break end
    admitted = admitted + 1
  end
  reply[#reply + 1] = admitted
  return reply
end

-- Admits each request of the batch in turn, then writes what was counted.
local function admit()
  local replies = {}
  local key_at, arg_at = 1, 4
  for r = 1, tonumber(ARGV[3]) do
    local slot, copies, k = ARGV[arg_at], tonumber(ARGV[arg_at + 1]), tonumber(ARGV[arg_at + 2])
    replies[r] = admit_copies(key_at, arg_at + 3, k, slot, copies)
    key_at = key_at + k
    arg_at = arg_at + 3 + 3 * k
  end
  for _, key in ipairs(window_order) do
    local w = windows[key]
    if w.added ~= 0 then
      add_to_bucket(key, second, w.added)
      redis.call('HINCRBY', key, 'sum', w.added)
      if w.oldest == nil then redis.call('HSET', key, 'min', second) end
    end
  end
  for _, key in ipairs(slot_order) do
    local s = slot_sets[key]
    if #s.members > 0 then
      redis.call('ZADD', key, unpack(s.members))
      redis.call('PEXPIRE', key, s.life + 1000)
    end
  end
  return replies
end

local function settle()
  local freed, freed_order = {}, {}      -- slot ids by key
  local changes, change_order = {}, {}   -- {buckets = {second -> n}, order, total, now_too}
  local spent, spent_order = {}, {}      -- USD by key
  local live = {}                        -- by key and second: whether the bucket is in the window
  for i = 1, #KEYS do
    local kind, a, b, c = ARGV[4 * i], ARGV[4 * i + 1], ARGV[4 * i + 2], ARGV[4 * i + 3]
    local key = KEYS[i]
    if kind == 'P' then
      note(freed_order, freed, key)
      local ids = freed[key] or {}
      ids[#ids + 1] = a
      freed[key] = ids
    elseif kind == 'T' then
      local at, n = tonumber(b), tonumber(a)
      local known = live[key] or {}
      live[key] = known
      if known[at] == nil then
        known[at] = at > second - 61 and redis.call('HEXISTS', key, b) == 1
      end
      if not known[at] then at, n = second, tonumber(c) end
      note(change_order, changes, key)
      local change = changes[key] or {buckets = {}, order = {}, total = 0, now_too = false}
      changes[key] = change
      if change.buckets[at] == nil then
        change.order[#change.order + 1] = at
        change.buckets[at] = 0
      end
      change.buckets[at] = change.buckets[at] + n
      change.total = change.total + n
      if at == second then change.now_too = true end
    elseif kind == 'S' then
      note(spent_order, spent, key)
      spent[key] = (spent[key] or 0) + tonumber(a)
    end
  end
  for _, key in ipairs(freed_order) do
    redis.call('ZREM', key, unpack(freed[key]))
  end
  for _, key in ipairs(change_order) do
    local change = changes[key]
    for _, at in ipairs(change.order) do
      if change.buckets[at] ~= 0 then add_to_bucket(key, at, change.buckets[at]) end
    end
    if change.total ~= 0 then redis.call('HINCRBY', key, 'sum', change.total) end
    -- A count for this second in an empty window starts it: its oldest second is now.
    if change.now_too then redis.call('HSETNX', key, 'min', second) end
  end
  for _, key in ipairs(spent_order) do
    if redis.call('EXISTS', key) == 1 then
      redis.call('INCRBYFLOAT', key, string.format('%.17g', spent[key]))
      redis.call('EXPIRE', key, 86400)
    end
  end
  return 0
end

if mode == 'admit' then return admit() end
return settle()
