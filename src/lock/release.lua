-- Release a lock only if we still hold it, and wake one waiter if any waits.
-- KEYS[1]: the lock, KEYS[2]: the waiters mark, KEYS[3]: the wake-up list.
-- ARGV[1]: our token, ARGV[2]: wake-up list TTL (ms).
-- Returns 1 when released, 0 when the key was gone (expired), -1 when someone else holds it.
-- Our token may carry a '+w' suffix: a waiter marked it (see acquire.lua).
local v = redis.call('GET', KEYS[1])
if v == ARGV[1] or v == ARGV[1] .. '+w' then
  redis.call('DEL', KEYS[1])
  if redis.call('EXISTS', KEYS[2]) == 1 then
    -- One item at most: each release wakes one waiter (BLPOP serves the longest waiting).
    redis.call('DEL', KEYS[3])
    redis.call('RPUSH', KEYS[3], '1')
    redis.call('PEXPIRE', KEYS[3], ARGV[2])
  end
  return 1
end
if v then
  return -1
end
return 0
