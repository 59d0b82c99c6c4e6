-- Move one dead-letter entry back to a queue. ARGV: 1 the entry as stored, 2 priority
-- letter, 3 the job to push. Returns 1, or 0 when the entry is no longer there (someone
-- else requeued or purged it): a job is never requeued twice.
if redis.call('LREM', KEYS[7], 1, ARGV[1]) == 0 then return 0 end
redis.call('LPUSH', KEYS[LIST[ARGV[2]]], ARGV[3])
return 1
