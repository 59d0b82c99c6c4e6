-- Backlog in one atomic read. KEYS: 1 pending counter, 2 dead list, 3 seq, then for each
-- partition its list and its in-flight list. Returns {pending, dead, seq, now, queued,
-- in flight, oldest pending ms or -1, lowest pending seq or -1}.
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local queued, inflight, oldest, low = 0, 0, -1, -1
for i = 4, #KEYS, 2 do
  local q = redis.call('LLEN', KEYS[i])
  local f = redis.call('LLEN', KEYS[i + 1])
  queued = queued + q
  inflight = inflight + f
  local head = false
  if f > 0 then head = redis.call('LINDEX', KEYS[i + 1], 0)
  elseif q > 0 then head = redis.call('LINDEX', KEYS[i], 0) end
  if head then
    local s, at = string.match(head, '^(%d+):(%d+):')
    s = tonumber(s)
    at = tonumber(at)
    if low < 0 or s < low then low = s end
    if oldest < 0 or at < oldest then oldest = at end
  end
end
return {
  tonumber(redis.call('GET', KEYS[1]) or '0'), redis.call('LLEN', KEYS[2]),
  tonumber(redis.call('GET', KEYS[3]) or '0'), now, queued, inflight, oldest, low,
}
