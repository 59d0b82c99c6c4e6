-- Take a lock and issue its fencing token, in one step.
-- KEYS[1]: the lock, KEYS[2]: the fence, KEYS[3]: the waiters mark.
-- ARGV[1]: our token, ARGV[2]: lease (ms), ARGV[3]: waiters mark TTL (ms; 0 = not
-- waiting), ARGV[4]: fence key TTL (ms).
-- Returns {1, fence, waiters?} when taken, {0, holder's PTTL} when held by someone else.
--
-- The fence is max(last + 1, server time in microseconds): strictly increasing per name,
-- and never below the server's clock, so it keeps rising after the fence key is lost
-- (a failover that dropped the last increments, a restart without persistence, expiry).
if redis.call('SET', KEYS[1], ARGV[1], 'NX', 'PX', ARGV[2]) then
  local t = redis.call('TIME')
  local fence = tonumber(t[1]) * 1000000 + tonumber(t[2])
  local last = tonumber(redis.call('GET', KEYS[2]) or '0') or 0
  if last >= fence then
    fence = last + 1
  end
  redis.call('SET', KEYS[2], string.format('%.0f', fence), 'PX', ARGV[4])
  return {1, fence, redis.call('EXISTS', KEYS[3])}
end
if ARGV[3] ~= '0' then
  redis.call('SET', KEYS[3], '1', 'PX', ARGV[3])
  -- Tell the holder too: its token gains a '+w' suffix (same TTL), so its native
  -- compare-and-delete misses and it releases through release.lua, which wakes us.
  local v = redis.call('GET', KEYS[1])
  if v and string.sub(v, -2) ~= '+w' then
    redis.call('SET', KEYS[1], v .. '+w', 'KEEPTTL')
  end
end
return {0, redis.call('PTTL', KEYS[1])}
