-- GCRA (generic cell rate algorithm): the key holds the theoretical arrival time (TAT) in
-- microseconds. A request of `cost` moves the TAT by cost * interval and is admitted when the
-- new TAT is at most `(burst + 1) * interval` ahead of now. Answers like CL.THROTTLE:
-- limit = burst + 1, remaining, retry after (-1 when allowed), reset after.
--
-- KEYS[1]  the TAT (a decimal integer string, microseconds)
-- ARGV[1]  cost     ARGV[2] burst     ARGV[3] interval (us per unit; period / rate)
-- ARGV[4]  testing hook: the time in microseconds to use instead of TIME ('' = TIME)
--
-- Reply: {outcome, limit, remaining, reset_after_us, retry_after_us} (see sliding_log.lua).
local key = KEYS[1]
local cost = tonumber(ARGV[1])
local burst = tonumber(ARGV[2])
local interval = tonumber(ARGV[3])
local now = now_us(ARGV[4])

local limit = burst + 1
local tolerance = interval * limit
local stored = redis.call('GET', key)
local tat = 0
if stored then
  tat = tonumber(string.match(stored, '^%d+$'))
  if not tat then return redis.error_reply('ERR rate limiter key holds foreign data: ' .. key) end
end
if tat < now then tat = now end
local new_tat = tat + interval * cost
local allow_at = new_tat - tolerance

local outcome, retry, ttl
if cost > limit then
  outcome, retry, ttl = 2, -1, tat - now
elseif now < allow_at then
  outcome, retry, ttl = 1, allow_at - now, tat - now
else
  outcome, retry, ttl = 0, -1, new_tat - now
  if cost > 0 then
    redis.call('SET', key, string.format('%.0f', new_tat), 'PX', math.ceil(ttl / 1000))
  end
end
local remaining = fdiv(tolerance - ttl, interval)
if remaining < 0 then remaining = 0 end
return {outcome, limit, remaining, ttl, retry}
