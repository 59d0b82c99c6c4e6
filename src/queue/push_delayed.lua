-- Schedule jobs for later. ARGV: 1 priority letter, 2 delay ms, 3.. raw jobs.
-- Due time = server time + delay; equal due times keep push order (the seq).
local due = now_ms() + tonumber(ARGV[2])
for i = 3, #ARGV do
  local seq = redis.call('INCR', KEYS[9])
  redis.call('ZADD', KEYS[6], due, ARGV[1] .. string.format('%016d', seq) .. ARGV[i])
end
return due
