-- Shared by every queue script (prepended to each one by queue/scripts.rs).
-- KEYS: 1 high, 2 medium, 3 low (lists: producers LPUSH, consumers RPOP), 4 inflight
-- (zset token -> lease deadline ms), 5 leases (hash token -> priority letter .. raw job),
-- 6 delayed (zset priority letter .. 16-digit seq .. raw job -> due ms), 7 dead letter
-- (list, newest first), 8 expired (hash sha1(raw) -> leases that ran out), 9 seq.
-- Time is the server's: every deadline and due time below is TIME in milliseconds.
local LIST = { h = 1, m = 2, l = 3 }
local LETTER = { 'h', 'm', 'l' }

local function now_ms()
  local t = redis.call('TIME')
  return tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
end

-- Delayed jobs that are due go to the tail of their list, in due order (ties: seq order).
local function promote(now, limit)
  local due = redis.call('ZRANGEBYSCORE', KEYS[6], '-inf', now, 'LIMIT', 0, limit)
  for _, m in ipairs(due) do
    redis.call('ZREM', KEYS[6], m)
    redis.call('LPUSH', KEYS[LIST[string.sub(m, 1, 1)]], string.sub(m, 18))
  end
  return #due
end

-- Leases past their deadline: the job goes back to the head of its list (it is taken
-- next), its lease is gone (a late ack by the old holder fails), and the expiry is
-- counted against the job. One script: two reapers never return a job twice.
local function reap(now, limit)
  local gone = redis.call('ZRANGEBYSCORE', KEYS[4], '-inf', now, 'LIMIT', 0, limit)
  for _, token in ipairs(gone) do
    redis.call('ZREM', KEYS[4], token)
    local v = redis.call('HGET', KEYS[5], token)
    if v then
      redis.call('HDEL', KEYS[5], token)
      local raw = string.sub(v, 2)
      redis.call('RPUSH', KEYS[LIST[string.sub(v, 1, 1)]], raw)
      redis.call('HINCRBY', KEYS[8], redis.sha1hex(raw), 1)
    end
  end
  return #gone
end

local function forget_expiries(raw)
  if redis.call('EXISTS', KEYS[8]) == 1 then
    redis.call('HDEL', KEYS[8], redis.sha1hex(raw))
  end
end
