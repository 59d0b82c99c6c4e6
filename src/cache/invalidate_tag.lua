-- Delete every entry recorded in a tag set, then the set itself, atomically.
-- KEYS[1]: the tag set. The entries it names share its hash tag (same cluster slot).
-- Returns how many entries existed and were deleted.
local members = redis.call('SMEMBERS', KEYS[1])
local n = 0
for i = 1, #members, 500 do
  n = n + redis.call('UNLINK', unpack(members, i, math.min(i + 499, #members)))
end
redis.call('DEL', KEYS[1])
return n
