-- ARGV: key, op ('allow' | 'success' | 'failure'), now_ms, failures_to_open, cooldown_ms, max_cooldown_ms.
-- A model's circuit, shared by every worker of the fleet. Closed: calls go through and transient failures
-- are counted; `failures_to_open` in a row open it. Open: calls stop until its cooldown is over; then one
-- probe call goes through (half open): its success closes the circuit, its failure opens it again for
-- twice the cooldown (at most max_cooldown). Returns {allowed (allow) or 1, state, failures}.
local key, op, now = ARGV[1], ARGV[2], tonumber(ARGV[3])
local threshold, cooldown, max_cooldown = tonumber(ARGV[4]), tonumber(ARGV[5]), tonumber(ARGV[6])
local h = redis.call('HMGET', key, 'failures', 'open_until', 'cooldown', 'probe_until')
local failures, open_until = tonumber(h[1]) or 0, tonumber(h[2]) or 0
local current, probe_until = tonumber(h[3]) or cooldown, tonumber(h[4]) or 0

local function state()
  if open_until == 0 then return 'closed' end
  if now < open_until then return 'open' end
  return 'half_open'
end

if op == 'allow' then
  local s = state()
  if s == 'closed' then return {1, s, failures} end
  if s == 'open' or now < probe_until then return {0, s, failures} end
  redis.call('HSET', key, 'probe_until', now + current)  -- one probe at a time, for one cooldown at most
  return {1, s, failures}
end

if op == 'success' then
  redis.call('DEL', key)
  return {1, 'closed', 0}
end

failures = failures + 1
if open_until ~= 0 and now >= open_until then
  current = math.min(current * 2, max_cooldown)  -- the probe failed: open again, for longer
  open_until = now + current
elseif open_until == 0 and failures >= threshold then
  open_until = now + current
end
redis.call('HSET', key, 'failures', failures, 'open_until', open_until, 'cooldown', current, 'probe_until', 0)
redis.call('PEXPIRE', key, max_cooldown * 10)
return {1, state(), failures}
