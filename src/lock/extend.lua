-- Set the lease of a lock we still hold; never recreates an expired one.
-- KEYS[1]: the lock. ARGV[1]: our token, ARGV[2]: the new lease (ms).
-- Returns 1 when extended, 0 when the key is gone or holds another token.
local v = redis.call('GET', KEYS[1])
if v == ARGV[1] or v == ARGV[1] .. '+w' then
  redis.call('PEXPIRE', KEYS[1], ARGV[2])
  return 1
end
return 0
