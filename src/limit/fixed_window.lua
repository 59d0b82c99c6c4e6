-- Fixed window: a count per window aligned to multiples of `window` on the server's clock,
-- stored with the window's start and written with its expiry in one SET ... PX (the count
-- can never outlive its window, as a lost EXPIRE after INCR would let it).
--
-- KEYS[1]  a string "<window start us> <units admitted in it>"
-- ARGV[1]  cost     ARGV[2] limit     ARGV[3] window (us)
-- ARGV[4]  testing hook: the time in microseconds to use instead of TIME ('' = TIME)
--
-- Reply: {outcome, limit, remaining, reset_after_us, retry_after_us} (see sliding_log.lua).
local key = KEYS[1]
local cost = tonumber(ARGV[1])
local limit = tonumber(ARGV[2])
local window = tonumber(ARGV[3])
local now = now_us(ARGV[4])

-- The window's start, exact in integers (a double quotient may round across a multiple).
local start = math.floor(now / window) * window
if start > now then start = start - window elseif start + window <= now then start = start + window end
local reset = start + window - now

local n = 0
local state = redis.call('GET', key)
if state then
  local w, count = string.match(state, '^(%d+) (%d+)$')
  if not w then return redis.error_reply('ERR rate limiter key holds foreign data: ' .. key) end
  if tonumber(w) == start then n = tonumber(count) end
end

local free = limit - n
if free < 0 then free = 0 end
local reset_after = 0
if n > 0 then reset_after = reset end
if cost > limit then
  return {2, limit, free, reset_after, -1}
end
if n + cost <= limit then
  if cost > 0 then
    n = n + cost
    redis.call('SET', key, int(start) .. ' ' .. int(n), 'PX', math.ceil(reset / 1000))
    reset_after = reset
  end
  return {0, limit, limit - n, reset_after, -1}
end
return {1, limit, free, reset_after, reset}
