-- Sliding-window log: one sorted set per limited id, one member per admitted unit of cost,
-- scored by its admission time in microseconds. Exact: a request is admitted when fewer than
-- `limit` units were admitted in the last `window` microseconds.
--
-- KEYS[1]  the sorted set
-- ARGV[1]  cost (integer >= 0)        ARGV[2] limit (integer >= 1)
-- ARGV[3]  window (microseconds)      ARGV[4] nonce: makes members unique per request
-- ARGV[5]  testing hook: the time in microseconds to use instead of TIME ('' = TIME)
--
-- Reply: {outcome, limit, remaining, reset_after_us, retry_after_us}
--   outcome 0 allowed, 1 limited, 2 cost above the limit (never allowed); retry -1 = none.
-- Every number crossing the boundary is an integer: arguments arrive as decimal strings,
-- scores are written with %.0f (never Lua's %.14g number formatting), replies are integers.
local key = KEYS[1]
local cost = tonumber(ARGV[1])
local limit = tonumber(ARGV[2])
local window = tonumber(ARGV[3])
local nonce = ARGV[4]
local now = now_us(ARGV[5])

-- Members at or before now - window have left the window.
redis.call('ZREMRANGEBYSCORE', key, '-inf', int(now - window))
local count = redis.call('ZCARD', key)

local function reset_after()
  if count == 0 then return 0 end
  local newest = redis.call('ZRANGE', key, -1, -1, 'WITHSCORES')
  local r = tonumber(newest[2]) + window - now
  if r < 0 then r = 0 end
  return r
end

local free = limit - count
if free < 0 then free = 0 end
if cost > limit then
  return {2, limit, free, reset_after(), -1}
end
if count + cost <= limit then
  if cost > 0 then
    local score = int(now)
    local args = {}
    for i = 1, cost do
      args[#args + 1] = score
      args[#args + 1] = nonce .. ':' .. i
      if #args >= 200 or i == cost then
        redis.call('ZADD', key, unpack(args))
        args = {}
      end
    end
    count = count + cost
    redis.call('PEXPIRE', key, math.ceil(window / 1000))
    -- The newest member is this request's: the window empties `window` from now.
    return {0, limit, limit - count, window, -1}
  end
  return {0, limit, limit - count, reset_after(), -1}
end
-- Limited: the (count + cost - limit)-th oldest member must leave the window first.
local need = count + cost - limit
local nth = redis.call('ZRANGE', key, need - 1, need - 1, 'WITHSCORES')
local retry = tonumber(nth[2]) + window - now
if retry < 1 then retry = 1 end
return {1, limit, free, reset_after(), retry}
