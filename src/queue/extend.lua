-- Move a lease's deadline to now + ARGV[2] ms. ARGV: 1 token. Returns the new deadline,
-- or 0 when the lease is gone.
if redis.call('HEXISTS', KEYS[5], ARGV[1]) == 0 then return 0 end
local deadline = now_ms() + tonumber(ARGV[2])
redis.call('ZADD', KEYS[4], deadline, ARGV[1])
return deadline
