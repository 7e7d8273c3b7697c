-- Ends an admitted request: frees its slots, replaces reserved tokens by the tokens used, and
-- adds its cost to the budget counters.
--
-- KEYS[i]: the Redis key of step i.
-- ARGV[1]: now, in milliseconds since the epoch. ARGV[2]: the request's slot id.
-- ARGV[3i .. 3i+2]: step i's kind and two values:
--   P  free the request's slot
--   T  tokens: (used - reserved, "second:used"): the change goes to the bucket of the second
--      the request was admitted in; if that bucket has left the window the reservation is
--      gone with it, and the used tokens count now instead
--   S  spend: (USD, unused), added only to a counter that exists: one that expired starts
--      again from the database's figure at the next admission

local now = tonumber(ARGV[1])
local second = math.floor(now / 1000)
local id = ARGV[2]

for i = 1, #KEYS do
  local kind, a, b = ARGV[3 * i], ARGV[3 * i + 1], ARGV[3 * i + 2]
  local key = KEYS[i]
  if kind == 'P' then
    redis.call('ZREM', key, id)
  elseif kind == 'T' then
    local at, used = string.match(b, '^(%d+):(%d+)$')
    if redis.call('HEXISTS', key, at) == 1 and tonumber(at) > second - 61 then
      if tonumber(a) ~= 0 then redis.call('HINCRBY', key, at, a) end
    elseif tonumber(used) > 0 then
      redis.call('HINCRBY', key, second, used)
    end
    redis.call('EXPIRE', key, 62)
  elseif kind == 'S' then
    if redis.call('EXISTS', key) == 1 then
      redis.call('INCRBYFLOAT', key, a)
      redis.call('EXPIRE', key, 86400)
    end
  end
end
return 0
