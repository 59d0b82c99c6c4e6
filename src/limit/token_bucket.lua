-- Token bucket: `capacity` tokens, `refill` tokens added per `per` microseconds. Tokens are
-- kept multiplied by `per` (one token = `per` units, one microsecond adds `refill` units), so
-- fractional tokens are exact integers. A full bucket has no key: the key's TTL is the time
-- until the bucket is full again.
--
-- KEYS[1]  a string "<tokens * per> <time of that count, us>"
-- ARGV[1]  cost     ARGV[2] capacity     ARGV[3] refill     ARGV[4] per (us)
-- ARGV[5]  testing hook: the time in microseconds to use instead of TIME ('' = TIME)
--
-- Reply: {outcome, limit, remaining, reset_after_us, retry_after_us} (see sliding_log.lua).
local key = KEYS[1]
local cost = tonumber(ARGV[1])
local capacity = tonumber(ARGV[2])
local refill = tonumber(ARGV[3])
local per = tonumber(ARGV[4])
local now = now_us(ARGV[5])
local function cdiv(a, b)
  local q = fdiv(a, b)
  if q * b < a then q = q + 1 end
  return q
end

local full = capacity * per
local tokens = full
local state = redis.call('GET', key)
if state then
  local t, ts = string.match(state, '^(%d+) (%d+)$')
  if not t then return redis.error_reply('ERR rate limiter key holds foreign data: ' .. key) end
  tokens = tonumber(t)
  local elapsed = now - tonumber(ts)
  if elapsed > 0 then
    -- Compare before multiplying: elapsed * refill may exceed 2^53 for a long-idle key.
    if elapsed >= cdiv(full - tokens, refill) then
      tokens = full
    else
      tokens = tokens + elapsed * refill
    end
  end
end

local function reset_after() return cdiv(full - tokens, refill) end
if cost > capacity then
  return {2, capacity, fdiv(tokens, per), reset_after(), -1}
end
local need = cost * per
if tokens >= need then
  if cost > 0 then
    tokens = tokens - need
    local reset = reset_after()
    redis.call('SET', key, int(tokens) .. ' ' .. int(now), 'PX', math.ceil(reset / 1000))
  end
  return {0, capacity, fdiv(tokens, per), reset_after(), -1}
end
return {1, capacity, fdiv(tokens, per), reset_after(), cdiv(need - tokens, refill)}
