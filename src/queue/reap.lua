-- Return expired leases to their lists and move due delayed jobs. ARGV: 1 limit of each.
-- Returns {reaped, promoted}.
local now = now_ms()
local limit = tonumber(ARGV[1])
local reaped = reap(now, limit)
return { reaped, promote(now, limit) }
