-- Finish a leased job. ARGV: 1 lease token. Returns 1, or 0 when the lease is gone
-- (expired and reaped: the job was handed back and may be with another worker).
local v = redis.call('HGET', KEYS[5], ARGV[1])
if not v then return 0 end
redis.call('HDEL', KEYS[5], ARGV[1])
redis.call('ZREM', KEYS[4], ARGV[1])
forget_expiries(string.sub(v, 2))
return 1
