-- Admits one request against every limit it is held to, atomically: either every check
-- passes and all of them count the request, or nothing changes and the first refusal is told.
--
-- KEYS[i]: the Redis key of check i.
-- ARGV[1]: now, in milliseconds since the epoch. ARGV[2]: the request's slot id.
-- ARGV[3i .. 3i+2]: check i's kind, limit and amount:
--   R  requests in the sliding minute   (limit: requests)
--   T  tokens in the sliding minute     (limit: tokens; amount: tokens reserved now)
--   P  requests in flight               (limit: slots; amount: the slot's lifetime in ms)
--   B  spend against a budget           (limit: USD; amount: the spend to start from if the
--                                         counter does not exist yet)
-- Windows are hashes of per-second buckets. A bucket leaves the window 61 s after its second
-- began, so no event is forgotten sooner than 60 s after it happened.
-- Returns {0, second, used_1, ..., used_n} when admitted (each check's use before this
-- request), else {i, retry_after_ms, used} for the first check that refused.

local now = tonumber(ARGV[1])
local second = math.floor(now / 1000)
local id = ARGV[2]

local function window(key)
  local fields = redis.call('HGETALL', key)
  local used, oldest = 0, nil
  for j = 1, #fields, 2 do
    local s = tonumber(fields[j])
    if s <= second - 61 then
      redis.call('HDEL', key, fields[j])
    else
      used = used + tonumber(fields[j + 1])
      if oldest == nil or s < oldest then oldest = s end
    end
  end
  return used, oldest
end

local function frees_in(oldest)
  if oldest == nil then return 1000 end
  return math.max((oldest + 61) * 1000 - now, 1)
end

local reply = {'0', tostring(second)}
for i = 1, #KEYS do
  local kind, limit, amount = ARGV[3 * i], tonumber(ARGV[3 * i + 1]), ARGV[3 * i + 2]
  local key = KEYS[i]
  local used = 0
  if kind == 'R' then
    local oldest
    used, oldest = window(key)
    if used + 1 > limit then return {tostring(i), tostring(frees_in(oldest)), tostring(used)} end
  elseif kind == 'T' then
    local oldest
    used, oldest = window(key)
    if used >= limit or used + tonumber(amount) > limit then
      return {tostring(i), tostring(frees_in(oldest)), tostring(used)}
    end
  elseif kind == 'P' then
    redis.call('ZREMRANGEBYSCORE', key, '-inf', now)
    used = redis.call('ZCARD', key)
    if used >= limit then return {tostring(i), '1000', tostring(used)} end
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

for i = 1, #KEYS do
  local kind, amount = ARGV[3 * i], ARGV[3 * i + 2]
  local key = KEYS[i]
  if kind == 'R' then
    redis.call('HINCRBY', key, second, 1)
    redis.call('EXPIRE', key, 62)
  elseif kind == 'T' then
    if tonumber(amount) > 0 then redis.call('HINCRBY', key, second, amount) end
    redis.call('EXPIRE', key, 62)
  elseif kind == 'P' then
    redis.call('ZADD', key, now + tonumber(amount), id)
    redis.call('PEXPIRE', key, tonumber(amount) + 1000)
  end
end
return reply
