-- Give a leased job back. ARGV: 1 lease token, 2 action ('retry' | 'dead' | 'release'),
-- 3 the new raw job (retry) or the dead-letter entry (dead), 4 delay ms (retry).
-- retry: the rewritten job goes to the tail of its list, or to the delayed set when the
-- delay is positive; dead: the entry goes to the dead-letter list; release: the job as it
-- was goes back to the head of its list (no attempt counted). Returns 1, or 0 when the
-- lease is gone.
local v = redis.call('HGET', KEYS[5], ARGV[1])
if not v then return 0 end
redis.call('HDEL', KEYS[5], ARGV[1])
redis.call('ZREM', KEYS[4], ARGV[1])
local p = string.sub(v, 1, 1)
local old = string.sub(v, 2)
forget_expiries(old)
if ARGV[2] == 'dead' then
  redis.call('LPUSH', KEYS[7], ARGV[3])
elseif ARGV[2] == 'release' then
  redis.call('RPUSH', KEYS[LIST[p]], old)
else
  local delay = tonumber(ARGV[4])
  if delay > 0 then
    local seq = redis.call('INCR', KEYS[9])
    redis.call('ZADD', KEYS[6], now_ms() + delay, p .. string.format('%016d', seq) .. ARGV[3])
  else
    redis.call('LPUSH', KEYS[LIST[p]], ARGV[3])
  end
end
return 1
