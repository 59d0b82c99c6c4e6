-- Write the cache and record the write for the origin, atomically (one round trip).
-- KEYS: 1 cache key, 2 seq, 3 pending counter, 4 the key's partition list.
-- ARGV: 1 the caller's key, 2 value, 3 cache TTL ms (0: none), 4 backlog bound (0: none).
-- Record: <seq>:<server ms>:<key length>:<key><value>. Returns the seq, or -1 when the
-- backlog is at its bound (nothing written).
local bound = tonumber(ARGV[4])
local pending = redis.call('INCR', KEYS[3])
if bound > 0 and pending > bound then
  redis.call('DECR', KEYS[3])
  return -1
end
local ttl = tonumber(ARGV[3])
if ttl > 0 then
  redis.call('SET', KEYS[1], ARGV[2], 'PX', ttl)
else
  redis.call('SET', KEYS[1], ARGV[2])
end
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local seq = redis.call('INCR', KEYS[2])
redis.call('RPUSH', KEYS[4], seq .. ':' .. now .. ':' .. #ARGV[1] .. ':' .. ARGV[1] .. ARGV[2])
return seq
