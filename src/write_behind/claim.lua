-- Take a batch for the origin, under a lease, from the first of the caller's partitions
-- that has work (starting at ARGV[6], round robin).
-- KEYS: for each partition: its list, its in-flight list, its lease (triples).
-- ARGV: 1 token, 2 lease ms, 3 max batch, 4 max delay ms, 5 force (1: take a partial
-- batch now), 6 first partition to look at (1-based).
-- A batch left in flight by a holder whose lease ran out is taken again first, whole and
-- in order (per-key order survives crashes). A new batch is taken when the partition
-- holds a full batch, its oldest record waited max delay, or force is set.
-- Returns {0, wait ms (-1: nothing at all)} or {partition (1-based), 1 retaken | 2 new,
-- records...}.
local lease = tonumber(ARGV[2])
local batch = tonumber(ARGV[3])
local parts = #KEYS / 3
local wait = -1
local now = nil
for j = 0, parts - 1 do
  local i = (tonumber(ARGV[6]) - 1 + j) % parts
  local list, inflight, lk = KEYS[i * 3 + 1], KEYS[i * 3 + 2], KEYS[i * 3 + 3]
  if redis.call('EXISTS', lk) == 0 then
    if redis.call('LLEN', inflight) > 0 then
      redis.call('SET', lk, ARGV[1], 'PX', lease)
      local out = redis.call('LRANGE', inflight, 0, -1)
      table.insert(out, 1, 1)
      table.insert(out, 1, i + 1)
      return out
    end
    local n = redis.call('LLEN', list)
    if n > 0 then
      local take = true
      if n < batch and ARGV[5] ~= '1' then
        if not now then
          local t = redis.call('TIME')
          now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
        end
        local at = tonumber(string.match(redis.call('LINDEX', list, 0), '^%d+:(%d+):'))
        local left = tonumber(ARGV[4]) - (now - at)
        if left > 0 then
          take = false
          if wait < 0 or left < wait then wait = left end
        end
      end
      if take then
        local count = math.min(n, batch)
        local recs = redis.call('LRANGE', list, 0, count - 1)
        redis.call('LTRIM', list, count, -1)
        redis.call('RPUSH', inflight, unpack(recs))
        redis.call('SET', lk, ARGV[1], 'PX', lease)
        table.insert(recs, 1, 2)
        table.insert(recs, 1, i + 1)
        return recs
      end
    end
  elseif wait < 0 or lease < wait then
    -- Held by someone: look again within a lease.
    wait = redis.call('PTTL', lk)
  end
end
return { 0, wait }
