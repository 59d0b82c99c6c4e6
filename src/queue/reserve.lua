-- Take the job at the head of the highest non-empty priority and lease it, atomically.
-- ARGV: 1 lease token, 2 lease ms, 3 how many due/expired entries to move first.
-- Returns {raw, priority 1..3, expiries, now, deadline} or {'', 0, 0, now, next due or -1}.
local now = now_ms()
local limit = tonumber(ARGV[3])
promote(now, limit)
reap(now, limit)
for i = 1, 3 do
  local raw = redis.call('RPOP', KEYS[i])
  if raw then
    local deadline = now + tonumber(ARGV[2])
    redis.call('ZADD', KEYS[4], deadline, ARGV[1])
    redis.call('HSET', KEYS[5], ARGV[1], LETTER[i] .. raw)
    local expiries = 0
    if redis.call('EXISTS', KEYS[8]) == 1 then
      expiries = tonumber(redis.call('HGET', KEYS[8], redis.sha1hex(raw)) or '0')
    end
    return { raw, i, expiries, now, deadline }
  end
end
local nxt = redis.call('ZRANGE', KEYS[6], 0, 0, 'WITHSCORES')
local due = -1
if nxt[2] then due = tonumber(nxt[2]) end
return { '', 0, 0, now, due }
