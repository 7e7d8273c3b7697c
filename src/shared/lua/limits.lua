-- The limits llmgate holds across instances, in one script with two modes.
--
-- ARGV[1]: 'admit' or 'settle'. ARGV[2]: now, in milliseconds since the epoch. Both modes
-- take a batch of requests; KEYS holds their keys, request after request.
--
-- admit: ARGV[3] is the number of requests; then, for each, its slot id, its number of checks
-- k and 3k values. Each request is held to every limit it names, atomically: either every
-- check passes and all of them count it, or nothing changes and the first refusal is told.
-- Check i's kind, limit and amount:
--   R  requests in the sliding minute   (limit: requests)
--   T  tokens in the sliding minute     (limit: tokens; amount: tokens reserved now)
--   P  requests in flight               (limit: slots; amount: the slot's lifetime in ms)
--   B  spend against a budget           (limit: USD; amount: the spend to start from if the
--                                         counter does not exist yet)
-- Windows are hashes of per-second buckets (see `window`). A bucket leaves the window 61 s
-- after its second began, so no event is forgotten sooner than 60 s after it happened.
-- Returns one reply per request: {0, second, used_1, ..., used_k} when admitted (each check's
-- use before it), else {i, retry_after_ms, used} for the first check that refused.
--
-- settle: ends admitted requests: frees their slots, replaces reserved tokens by the tokens
-- used, and adds their cost to the budget counters. From ARGV[4], three values per key (step
-- i at ARGV[3i + 1]): its kind and two values:
--   P  free a slot: (its id, unused)
--   T  tokens: (used - reserved, "second:used"): the change goes to the bucket of the second
--      the request was admitted in; if that bucket has left the window the reservation is
--      gone with it, and the used tokens count now instead
--   S  spend: (USD, unused), added only to a counter that exists: one that expired starts
--      again from the database's figure at the next admission
-- Returns 0.

local mode = ARGV[1]
local now = tonumber(ARGV[2])
local second = math.floor(now / 1000)

-- A window hash keeps its total in field `sum` and its oldest second in `min`, so a check
-- reads two fields; the buckets are walked only when the oldest one has left the window.
local function window(key)
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

-- Adds `n` to the bucket of second `at`, keeping `sum` and `min`. `oldest` is the window's
-- oldest second when the caller read it (nil for an empty window), or false when it did not.
-- A bucket's first count renews the window's lifetime; later ones in that second need not.
local function count(key, at, n, oldest)
  if n == 0 then return end
  local bucket = redis.call('HINCRBY', key, at, n)
  redis.call('HINCRBY', key, 'sum', n)
  if oldest == false then oldest = tonumber(redis.call('HGET', key, 'min')) end
  if oldest == nil or tonumber(at) < oldest then redis.call('HSET', key, 'min', at) end
  if bucket == n then redis.call('EXPIRE', key, 62) end
end

local function frees_in(oldest)
  if oldest == nil then return 1000 end
  return math.max((oldest + 61) * 1000 - now, 1)
end

-- Admits one request whose checks are KEYS[first_key ..] and ARGV[first_arg ..] (three values
-- each), holding parallel slot `slot`.
local function admit_one(first_key, first_arg, k, slot)
  local reply = {'0', tostring(second)}
  local olds = {}
  for i = 1, k do
    local at = first_arg + 3 * (i - 1)
    local kind, limit, amount = ARGV[at], tonumber(ARGV[at + 1]), ARGV[at + 2]
    local key = KEYS[first_key + i - 1]
    local used = 0
    if kind == 'R' then
      local oldest
      used, oldest = window(key)
      if used + 1 > limit then return {tostring(i), tostring(frees_in(oldest)), tostring(used)} end
      olds[i] = oldest
    elseif kind == 'T' then
      local oldest
      used, oldest = window(key)
      if used >= limit or used + tonumber(amount) > limit then
        return {tostring(i), tostring(frees_in(oldest)), tostring(used)}
      end
      olds[i] = oldest
    elseif kind == 'P' then
      -- Slots past their expiry (held by an instance that died) are not counted, and are
      -- cleared out when they would refuse a request.
      used = redis.call('ZCOUNT', key, '(' .. now, '+inf')
      if used >= limit then
        redis.call('ZREMRANGEBYSCORE', key, '-inf', now)
        return {tostring(i), '1000', tostring(used)}
      end
    elseif kind == 'B' then
      local spent = redis.call('GET', key)
      if not spent then
        redis.call('SET', key, amount, 'EX', 86400)
        spent = amount
      end
      if tonumber(spent) >= limit then return {tostring(i), '0', spent} end
      used = spent
    end
    reply[#reply + 1] = tostring(used)
  end

  for i = 1, k do
    local at = first_arg + 3 * (i - 1)
    local kind, amount = ARGV[at], ARGV[at + 2]
    local key = KEYS[first_key + i - 1]
    if kind == 'R' then
      count(key, second, 1, olds[i])
    elseif kind == 'T' then
      count(key, second, tonumber(amount), olds[i])
    elseif kind == 'P' then
      redis.call('ZADD', key, now + tonumber(amount), slot)
      redis.call('PEXPIRE', key, tonumber(amount) + 1000)
    end
  end
  return reply
end

-- Admits each request of the batch in turn.
local function admit()
  local replies = {}
  local key_at, arg_at = 1, 4
  for r = 1, tonumber(ARGV[3]) do
    local slot, k = ARGV[arg_at], tonumber(ARGV[arg_at + 1])
    replies[r] = admit_one(key_at, arg_at + 2, k, slot)
    key_at = key_at + k
    arg_at = arg_at + 2 + 3 * k
  end
  return replies
end

local function settle()
  for i = 1, #KEYS do
    local kind, a, b = ARGV[3 * i + 1], ARGV[3 * i + 2], ARGV[3 * i + 3]
    local key = KEYS[i]
    if kind == 'P' then
      redis.call('ZREM', key, a)
    elseif kind == 'T' then
      local at, used = string.match(b, '^(%d+):(%d+)$')
      if redis.call('HEXISTS', key, at) == 1 and tonumber(at) > second - 61 then
        count(key, at, tonumber(a), false)
      else
        count(key, second, tonumber(used), false)
      end
    elseif kind == 'S' then
      if redis.call('EXISTS', key) == 1 then
        redis.call('INCRBYFLOAT', key, a)
        redis.call('EXPIRE', key, 86400)
      end
    end
  end
  return 0
end

if mode == 'admit' then return admit() end
return settle()
