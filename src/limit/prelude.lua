-- Prepended to every limiter script when it is loaded (`algorithm.rs`): the time and the
-- integer helpers all five share.
--
-- now_us(hook): the testing hook's time in microseconds when one is given, else the server's
-- TIME (the only clock a decision reads).
local function now_us(hook)
  if hook ~= '' then return tonumber(hook) end
  local t = redis.call('TIME')
  return tonumber(t[1]) * 1000000 + tonumber(t[2])
end
-- int(x): x as a decimal integer string (a Lua number could print as 1e+15).
local function int(x) return string.format('%.0f', x) end
-- fdiv(a, b): floor(a / b), exact for integers where the double quotient rounds across one.
local function fdiv(a, b)
  local q = math.floor(a / b)
  if q * b > a then q = q - 1 elseif (q + 1) * b <= a then q = q + 1 end
  return q
end

