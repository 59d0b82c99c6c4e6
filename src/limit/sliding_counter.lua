-- Sliding-window counter: the counts of the current and the previous aligned window, the
-- previous one weighted by how much of it still overlaps the sliding window:
--   estimate = prev * (window - elapsed) / window + cur
-- computed multiplied by `window` so that all arithmetic stays in integers.
--
-- KEYS[1]  a string "<current window start us> <its count> <previous window's count>"
-- ARGV[1]  cost     ARGV[2] limit     ARGV[3] window (us)
-- ARGV[4]  testing hook: the time in microseconds to use instead of TIME ('' = TIME)
--
-- Reply: {outcome, limit, remaining, reset_after_us, retry_after_us} (see sliding_log.lua).
local key = KEYS[1]
local cost = tonumber(ARGV[1])
local limit = tonumber(ARGV[2])
local window = tonumber(ARGV[3])
local now = now_us(ARGV[4])
-- Floor division of non-negative integers, exact even where the double quotient rounds.

local start = fdiv(now, window) * window
local elapsed = now - start

local cur, prev = 0, 0
local state = redis.call('GET', key)
if state then
  local w, c, p = string.match(state, '^(%d+) (%d+) (%d+)$')
  if not w then return redis.error_reply('ERR rate limiter key holds foreign data: ' .. key) end
  w = tonumber(w)
  if w == start then
    cur, prev = tonumber(c), tonumber(p)
  elseif w == start - window then
    prev = tonumber(c)
  end
end

local capacity = limit * window
local weighted = prev * (window - elapsed) + cur * window
local function remaining()
  local r = fdiv(capacity - weighted, window)
  if r < 0 then r = 0 end
  return r
end
local function reset_after()
  if cur > 0 then return start + 2 * window - now end
  if prev > 0 then return start + window - now end
  return 0
end
local function save()
  -- Needed until the end of the next window, where it is the previous count.
  redis.call('SET', key, int(start) .. ' ' .. int(cur) .. ' ' .. int(prev),
    'PX', math.ceil((start + 2 * window - now) / 1000))
end

if cost > limit then
  return {2, limit, remaining(), reset_after(), -1}
end
if weighted + cost * window <= capacity then
  if cost > 0 then
    cur = cur + cost
    weighted = weighted + cost * window
    save()
  end
  return {0, limit, remaining(), reset_after(), -1}
end
-- Limited: the first moment the estimate leaves room for `cost`, assuming no other traffic.
local retry
local room = (limit - cur - cost) * window
if room >= 0 then
  -- In this window, once prev * (window - e) <= room (prev > 0 here).
  retry = start + window - fdiv(room, prev) - now
else
  -- In the next window, where cur becomes the previous count (cur > 0 here).
  retry = start + 2 * window - fdiv((limit - cost) * window, cur) - now
end
if retry < 1 then retry = 1 end
return {1, limit, remaining(), reset_after(), retry}
