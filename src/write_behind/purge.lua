-- Drop every dead-lettered write. KEYS: 1 dead-letter list. Returns how many there were.
local n = redis.call('LLEN', KEYS[1])
redis.call('DEL', KEYS[1])
return n
