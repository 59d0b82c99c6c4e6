-- Write the cache and record the writes for the origin, atomically (one round trip for
-- one write or for a group of writes from several threads).
-- KEYS: 1 seq, 2 pending counter, then per write: its cache key, its partition list.
-- ARGV: 1 cache TTL ms (0: none), 2 backlog bound (0: none), then per write: the
-- caller's key, the value.
-- Record: <seq>:<server ms>:<key length>:<key><value>. Returns per write its seq, or -1
-- when the backlog was at its bound (that write left no trace).
local ttl = tonumber(ARGV[1])
local bound = tonumber(ARGV[2])
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local out = {}
for i = 1, (#KEYS - 2) / 2 do
  local pending = redis.call('INCR', KEYS[2])
  if bound > 0 and pending > bound then
    redis.call('DECR', KEYS[2])
    out[i] = -1
  else
    local key, value = ARGV[2 * i + 1], ARGV[2 * i + 2]
    if ttl > 0 then
      redis.call('SET', KEYS[2 * i + 1], value, 'PX', ttl)
    else
      redis.call('SET', KEYS[2 * i + 1], value)
    end
    local seq = redis.call('INCR', KEYS[1])
    redis.call('RPUSH', KEYS[2 * i + 2], seq .. ':' .. now .. ':' .. #key .. ':' .. key .. value)
    out[i] = seq
  end
end
return out
