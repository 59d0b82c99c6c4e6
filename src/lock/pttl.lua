-- The remaining lease of a lock we hold.
-- KEYS[1]: the lock. ARGV[1]: our token.
-- Returns the PTTL in ms, or -3 when the key is gone or holds another token.
if redis.call('GET', KEYS[1]) == ARGV[1] then
  return redis.call('PTTL', KEYS[1])
end
return -3
