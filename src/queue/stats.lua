-- Depths and the oldest waiting job of each list, in one atomic read.
-- Returns {high, medium, low, inflight, delayed, dead, now, oldest high, medium, low}.
return {
  redis.call('LLEN', KEYS[1]), redis.call('LLEN', KEYS[2]), redis.call('LLEN', KEYS[3]),
  redis.call('ZCARD', KEYS[4]), redis.call('ZCARD', KEYS[6]), redis.call('LLEN', KEYS[7]),
  now_ms(),
  redis.call('LINDEX', KEYS[1], -1), redis.call('LINDEX', KEYS[2], -1),
  redis.call('LINDEX', KEYS[3], -1),
}
