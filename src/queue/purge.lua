-- Drop every dead-letter entry. Returns how many there were.
local n = redis.call('LLEN', KEYS[7])
redis.call('DEL', KEYS[7])
return n
