-- Write a cache entry and record it in its tag sets, atomically (so an invalidation of
-- one of the tags runs entirely before or entirely after this write: no orphan entry).
-- KEYS[1]: the entry; KEYS[2..]: tag sets (same hash tag as the entry).
-- ARGV[1]: entry bytes; ARGV[2]: PX in ms, or 0 for no expiry.
-- A tag set lives as long as its longest-lived entry: a new set gets the entry's PX, an
-- existing one is extended when the entry outlives it, and made persistent for an entry
-- without expiry.
local px = tonumber(ARGV[2])
if px > 0 then
  redis.call('SET', KEYS[1], ARGV[1], 'PX', px)
else
  redis.call('SET', KEYS[1], ARGV[1])
end
for i = 2, #KEYS do
  local existed = redis.call('EXISTS', KEYS[i]) == 1
  local ttl = redis.call('PTTL', KEYS[i])
  redis.call('SADD', KEYS[i], KEYS[1])
  if px == 0 then
    redis.call('PERSIST', KEYS[i])
  elseif not existed or (ttl >= 0 and ttl < px) then
    redis.call('PEXPIRE', KEYS[i], px)
  end
end
return 1
