-- Settle a claimed batch: every record leaves pending, as applied or dead-lettered, in
-- one step. KEYS: 1 in-flight list, 2 lease, 3 pending counter, 4 dead-letter list.
-- ARGV: 1 token, 2.. dead-letter entries. Returns the batch size, or -1 when the lease is
-- gone (someone else has the batch now; nothing changed).
if redis.call('GET', KEYS[2]) ~= ARGV[1] then return -1 end
local n = redis.call('LLEN', KEYS[1])
redis.call('DEL', KEYS[1], KEYS[2])
redis.call('DECRBY', KEYS[3], n)
for i = 2, #ARGV do
  redis.call('LPUSH', KEYS[4], ARGV[i])
end
return n
