-- The remaining lease of a lock we hold.
-- KEYS[1]: the lock. ARGV[1]: our token.
-- Returns the PTTL in ms, or -3 when the key is gone or holds another token.
local v = redis.call('GET', KEYS[1])
if v == ARGV[1] or v == ARGV[1] .. '+w' then
  return redis.call('PTTL', KEYS[1])
end
return -3
