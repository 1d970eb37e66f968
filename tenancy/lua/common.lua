-- Shared helpers, prepended to every tenantq script when it is loaded.
-- Keys: P..':tenant:'..t (plan and counters of a tenant), P..':q:'..t..':'..c (its jobs of class c),
-- P..':ring:'..c (tenants with work in class c that may be served now), P..':backlog:'..c (jobs waiting).
local CLASSES = {'interactive', 'standard', 'batch'}

local function tenant_key(P, t) return P .. ':tenant:' .. t end
local function queue_key(P, t, c) return P .. ':q:' .. t .. ':' .. c end

-- HINCRBY by a computed amount: Lua would send -0 (or 1e+15) as text that Redis refuses as an integer,
-- which used to abort finish.lua halfway for every job without a reservation.
local function hincr(key, field, n)
  if n ~= 0 then redis.call('HINCRBY', key, field, string.format('%d', n)) end
end

local function num(v, default)
  local n = tonumber(v)
  if n == nil then return default end
  return n
end

-- A tenant may be served when it is active and below its in-flight cap.
local function eligible(P, t)
  local h = redis.call('HMGET', tenant_key(P, t), 'status', 'cap', 'inflight')
  if h[1] ~= 'active' then return false end
  local cap = num(h[2], 0)
  return cap <= 0 or num(h[3], 0) < cap
end

-- Put the tenant back into every ring where it has work, unless it is there already or may not be served.
local function ring_tenant(P, t)
  if not eligible(P, t) then return end
  local tk = tenant_key(P, t)
  for _, c in ipairs(CLASSES) do
    if redis.call('HGET', tk, 'ring:' .. c) ~= '1' and redis.call('LLEN', queue_key(P, t, c)) > 0 then
      redis.call('RPUSH', P .. ':ring:' .. c, t)
      redis.call('HSET', tk, 'ring:' .. c, '1', 'credit:' .. c, '0')
    end
  end
end

local function wake(P)
  if redis.call('LLEN', P .. ':wake') == 0 then redis.call('RPUSH', P .. ':wake', '1') end
end

-- Give back the slot of a lease: counters, reservation, and the tenant's place in the rings.
local function release_lease(P, job_id)
  local meta = redis.call('HGET', P .. ':lease', job_id)
  if not meta then return nil end
  local m = cjson.decode(meta)
  redis.call('ZREM', P .. ':leases', job_id)
  redis.call('HDEL', P .. ':lease', job_id)
  local env = redis.call('HGET', P .. ':lease:env', job_id)
  redis.call('HDEL', P .. ':lease:env', job_id)
  m.claimed = redis.call('HGET', P .. ':claimed', job_id) == tostring(m.a)
  redis.call('HDEL', P .. ':claimed', job_id)
  redis.call('HINCRBY', tenant_key(P, m.t), 'inflight', -1)
  redis.call('DECR', P .. ':inflight:' .. m.c)
  redis.call('DECR', P .. ':inflight')
  local sk = P .. ':spend:' .. m.t .. ':' .. m.month
  hincr(sk, 'reserved_usd', -m.eu)
  hincr(sk, 'reserved_tokens', -m.et)
  m.env = env
  return m
end

-- A job is done with the queues: its delivery number, lost-worker count and kept outcome go.
local function forget_job(P, job_id)
  redis.call('HDEL', P .. ':attempt', job_id)
  redis.call('HDEL', P .. ':lost', job_id)
  redis.call('HDEL', P .. ':kept', job_id)
end

-- Publish a change of a job's state on its channel (tenancy/events.py), stamped with Redis's clock.
local function publish_event(P, job_id, name, status, data)
  local t = redis.call('TIME')
  redis.call('PUBLISH', P .. ':events:' .. job_id, cjson.encode({job_id = job_id, event = name, status = status,
    at = tonumber(t[1]) + tonumber(t[2]) / 1e6, data = data or {}}))
end
