-- Extend (ARGV[2] > 0: to that many ms) or give up (0) a partition's lease, if it is
-- still ours. KEYS: 1 lease. ARGV: 1 token, 2 ms. Returns 1, or 0 when it is not ours.
if redis.call('GET', KEYS[1]) ~= ARGV[1] then return 0 end
if tonumber(ARGV[2]) > 0 then
  redis.call('PEXPIRE', KEYS[1], ARGV[2])
else
  redis.call('DEL', KEYS[1])
end
return 1
