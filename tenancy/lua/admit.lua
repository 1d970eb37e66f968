-- ARGV: prefix, class, now_ms, lease_ttl_ms, max_batch, month, minute, fleet_cap, max_steps.
-- Admits up to max_batch jobs of one class, round robin over the ring with a weight per tenant, within the
-- live worker capacity of the class, the fleet cap, each tenant's cap, budget and rate limits.
-- Returns {admitted, rejected, dead}: admitted and rejected are flat lists of {job_id, attempt, envelope}
-- and {job_id, reason, envelope}; dead counts undecodable messages moved to the dead-letter list.
local P, c = ARGV[1], ARGV[2]
local now, ttl, max_batch = tonumber(ARGV[3]), tonumber(ARGV[4]), tonumber(ARGV[5])
local month, minute, fleet_cap, max_steps = ARGV[6], ARGV[7], tonumber(ARGV[8]), tonumber(ARGV[9])
local ring = P .. ':ring:' .. c

-- Live capacity: the concurrency of workers whose heartbeat has not expired.
local cap_class, cap_total = 0, 0
for _, w in ipairs(redis.call('ZRANGEBYSCORE', P .. ':workers', '-inf', now)) do
  redis.call('ZREM', P .. ':workers', w)
  redis.call('HDEL', P .. ':worker:slots', w)
end
for _, slots in ipairs(redis.call('HVALS', P .. ':worker:slots')) do
  local s = cjson.decode(slots)
  cap_total = cap_total + s.concurrency
  for _, sc in ipairs(s.classes) do
    if sc == c then cap_class = cap_class + s.concurrency end
  end
end
local free = math.min(
  cap_class - num(redis.call('GET', P .. ':inflight:' .. c), 0),
  math.min(cap_total, fleet_cap) - num(redis.call('GET', P .. ':inflight'), 0),
  max_batch)

local admitted, rejected, dead, steps = {}, {}, 0, 0
local function park(t)
  redis.call('LPOP', ring)
  redis.call('HSET', tenant_key(P, t), 'ring:' .. c, '0')
end
local function rotate(t)
  redis.call('LMOVE', ring, ring, 'LEFT', 'RIGHT')
  redis.call('HSET', tenant_key(P, t), 'credit:' .. c, '0')
end

while free > 0 and steps < max_steps do
  steps = steps + 1
  local t = redis.call('LINDEX', ring, 0)
  if not t then break end
  local tk = tenant_key(P, t)
  local h = redis.call('HMGET', tk, 'status', 'cap', 'inflight', 'weight', 'budget_usd', 'budget_tokens',
    'rpm', 'tpm', 'credit:' .. c)
  local q = queue_key(P, t, c)
  local rk = P .. ':rate:' .. t .. ':' .. minute
  local r = redis.call('HMGET', rk, 'requests', 'tokens')
  local cap, inflight = num(h[2], 0), num(h[3], 0)
  if h[1] ~= 'active' or (cap > 0 and inflight >= cap) then
    park(t)
  elseif num(h[7], -1) >= 0 and num(r[1], 0) >= num(h[7], -1) then
    park(t)
    redis.call('ZADD', P .. ':sleep', (math.floor(now / 60000) + 1) * 60000, t)
  else
    local raw = redis.call('LPOP', q)
    if not raw then
      park(t)
    else
      redis.call('DECR', P .. ':backlog:' .. c)
      local ok, env = pcall(cjson.decode, raw)
      if not ok or type(env) ~= 'table' or type(env.job_id) ~= 'string' then
        redis.call('RPUSH', P .. ':dead', cjson.encode({tenant = t, class = c, at = now,
          reason = 'undecodable message in tenant queue: ' .. tostring(env), message = raw}))
        dead = dead + 1
      else
        local et, eu = math.floor(num(env.estimate_tokens, 0)), math.floor(num(env.estimate_usd, 0) * 1e6)
        local sk = P .. ':spend:' .. t .. ':' .. month
        local s = redis.call('HMGET', sk, 'usd', 'tokens', 'reserved_usd', 'reserved_tokens')
        local bu, bt = num(h[5], -1), num(h[6], -1)
        local tpm = num(h[8], -1)
        if (bu >= 0 and num(s[1], 0) + num(s[3], 0) + eu > bu)
            or (bt >= 0 and num(s[2], 0) + num(s[4], 0) + et > bt) then
          table.insert(rejected, env.job_id); table.insert(rejected, 'budget_exceeded'); table.insert(rejected, raw)
        elseif tpm >= 0 and num(r[2], 0) > 0 and num(r[2], 0) + et > tpm then
          redis.call('LPUSH', q, raw)
          redis.call('INCR', P .. ':backlog:' .. c)
          park(t)
          redis.call('ZADD', P .. ':sleep', (math.floor(now / 60000) + 1) * 60000, t)
        else
          local attempt = math.floor(num(redis.call('HGET', P .. ':attempt', env.job_id), 1))
          redis.call('ZADD', P .. ':leases', now + ttl, env.job_id)
          redis.call('HSET', P .. ':lease', env.job_id,
            cjson.encode({t = t, c = c, a = attempt, eu = eu, et = et, month = month}))
          redis.call('HSET', P .. ':lease:env', env.job_id, raw)
          redis.call('HINCRBY', tk, 'inflight', 1)
          redis.call('INCR', P .. ':inflight:' .. c)
          redis.call('INCR', P .. ':inflight')
          redis.call('HINCRBY', sk, 'reserved_usd', eu)
          redis.call('HINCRBY', sk, 'reserved_tokens', et)
          redis.call('HINCRBY', rk, 'requests', 1)
          redis.call('HINCRBY', rk, 'tokens', et)
          redis.call('EXPIRE', rk, 120)
          table.insert(admitted, env.job_id); table.insert(admitted, attempt); table.insert(admitted, raw)
          free = free - 1
          local credit = redis.call('HINCRBY', tk, 'credit:' .. c, 1)
          if redis.call('LLEN', q) == 0 then
            park(t)
          elseif credit >= num(h[4], 1) then
            rotate(t)
          end
        end
      end
    end
  end
end
return {admitted, rejected, dead}
