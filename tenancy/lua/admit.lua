-- ARGV: prefix, classes (comma separated, in the order they are served), now_ms, lease_ttl_ms, max_batch,
--       month, minute, fleet_cap, max_steps, celery_queue_prefix, tasks_json, default_task,
--       max_estimate_tokens, max_estimate_usd.
-- Admits up to max_batch jobs, class after class, round robin over each class's ring with a weight per
-- tenant, within the live worker capacity of the class, the fleet cap, each tenant's cap, budget and rate
-- limits. With a celery_queue_prefix, each admitted job becomes a Celery message in the queue
-- celery_queue_prefix..class in the same atomic step, so no lease ever lacks its message and no Python
-- publisher sits between a free slot and the next job.
-- Returns {admitted, rejected, dead}: admitted and rejected are flat lists of {job_id, attempt, envelope}
-- and {job_id, reason, envelope}; dead counts messages that cannot be jobs, moved to the dead-letter list
-- with a reason a person can act on.
local P, class_list = ARGV[1], ARGV[2]
local now, ttl, max_batch = tonumber(ARGV[3]), tonumber(ARGV[4]), tonumber(ARGV[5])
local month, minute, fleet_cap, max_steps = ARGV[6], ARGV[7], tonumber(ARGV[8]), tonumber(ARGV[9])
local celery_prefix, default_task = ARGV[10] or '', ARGV[12]
local max_tokens, max_usd = tonumber(ARGV[13]), tonumber(ARGV[14])
local tasks = {}
if celery_prefix ~= '' then tasks = cjson.decode(ARGV[11]) end

-- A Celery (protocol 2) message as kombu's Redis transport stores it: the task's arguments are
-- (envelope, attempt), and the envelope is spliced in as the text it was enqueued as, never re-encoded
-- (cjson would turn an empty list into an object). No body_encoding: kombu then reads the body as is.
-- argsrepr names the job only, so Celery's logs and events never carry a payload.
local NULL = cjson.null
local function publish(queue, job_id, attempt, raw, kind)
  local body = '[[' .. raw .. ',' .. attempt .. '],{},'
    .. '{"callbacks":null,"errbacks":null,"chain":null,"chord":null}]'
  redis.call('LPUSH', queue, cjson.encode({
    body = body, ['content-encoding'] = 'utf-8', ['content-type'] = 'application/json',
    headers = {
      lang = 'py', task = tasks[kind] or default_task, id = job_id, shadow = NULL, eta = NULL, expires = NULL,
      group = NULL, group_index = NULL, retries = 0, timelimit = {NULL, NULL}, root_id = job_id,
      parent_id = NULL, argsrepr = '[<envelope of ' .. job_id .. '>, ' .. attempt .. ']', kwargsrepr = '{}',
      origin = 'tenantq-admission', ignore_result = NULL, replaced_task_nesting = 0, stamped_headers = NULL,
      stamps = {},
    },
    properties = {
      correlation_id = job_id, reply_to = '', delivery_mode = 2, priority = 0,
      delivery_info = {exchange = '', routing_key = queue}, delivery_tag = job_id .. '.' .. attempt,
    },
  }))
end

-- What a decoded value is, in JSON's words (cjson decodes an array and an object alike, as a table).
local function json_kind(raw, v)
  if type(v) == 'table' then
    if string.find(raw, '^%s*%[') then return 'a JSON array' end
    return 'a JSON object'
  end
  if v == NULL then return 'JSON null' end
  return 'a JSON ' .. type(v)
end

-- An estimate as admission reserves it: a finite number from 0 to max, whole where asked; absent is 0.
-- Anything else reached HINCRBY as garbage (1e300 was booked as -9223372036854775808, and every later
-- finish of the tenant overflowed), and cjson reads NaN, Infinity and hex too: such a job is refused.
local function estimate(env, field, max, whole)
  local v = env[field]
  if v == nil then return 0 end
  if type(v) == 'number' and v == v and v >= 0 and v <= max and not (whole and v ~= math.floor(v)) then
    return v
  end
  local shown = type(v) == 'number' and tostring(v) or json_kind('', v)
  return nil, string.format('%s must be %s from 0 to %s, not %s', field,
    whole and 'a whole number' or 'a number', tostring(max), shown)
end

-- The job in a raw message and its reservation (env, tokens, micro-USD), or nil and why it cannot be one.
local function decode_job(raw)
  local ok, env = pcall(cjson.decode, raw)
  if not ok then return nil, 'undecodable message in tenant queue: not JSON (' .. tostring(env) .. ')' end
  if type(env) ~= 'table' or string.find(raw, '^%s*%[') then
    return nil, 'undecodable message in tenant queue: ' .. json_kind(raw, env) .. ', not a job object'
  end
  if env.job_id == nil then return nil, 'undecodable message in tenant queue: job_id is missing' end
  if type(env.job_id) ~= 'string' or env.job_id == '' then
    return nil, 'undecodable message in tenant queue: job_id must be a non-empty string, not '
      .. (env.job_id == '' and 'an empty one' or json_kind('', env.job_id))
  end
  local et, why = estimate(env, 'estimate_tokens', max_tokens, true)
  if et == nil then return nil, 'invalid job in tenant queue: ' .. why end
  local usd, why_usd = estimate(env, 'estimate_usd', max_usd, false)
  if usd == nil then return nil, 'invalid job in tenant queue: ' .. why_usd end
  return env, et, math.floor(usd * 1e6)
end

local classes = {}
for c in string.gmatch(class_list, '[^,]+') do table.insert(classes, c) end

-- Live capacity: the concurrency of workers whose heartbeat has not expired, per class and in all.
local cap_of, cap_total = {}, 0
for _, w in ipairs(redis.call('ZRANGEBYSCORE', P .. ':workers', '-inf', now)) do
  redis.call('ZREM', P .. ':workers', w)
  redis.call('HDEL', P .. ':worker:slots', w)
end
for _, slots in ipairs(redis.call('HVALS', P .. ':worker:slots')) do
  local s = cjson.decode(slots)
  cap_total = cap_total + s.concurrency
  for _, sc in ipairs(s.classes) do cap_of[sc] = (cap_of[sc] or 0) + s.concurrency end
end
local fleet_free = math.min(math.min(cap_total, fleet_cap) - num(redis.call('GET', P .. ':inflight'), 0),
  max_batch)

local admitted, rejected, dead, steps = {}, {}, 0, 0

-- 'reject': the job does not fit what is left of the month even if every job in flight cost nothing;
-- 'wait': it fits once the reservations in flight are reconciled with what those jobs really used.
local function budget_verdict(sk, bu, bt, eu, et)
  if bu < 0 and bt < 0 then return 'admit' end
  local s = redis.call('HMGET', sk, 'usd', 'tokens', 'reserved_usd', 'reserved_tokens')
  local usd, tokens = num(s[1], 0), num(s[2], 0)
  if (bu >= 0 and usd + eu > bu) or (bt >= 0 and tokens + et > bt) then return 'reject' end
  if (bu >= 0 and usd + num(s[3], 0) + eu > bu) or (bt >= 0 and tokens + num(s[4], 0) + et > bt) then
    return 'wait'
  end
  return 'admit'
end

local function next_minute() return (math.floor(now / 60000) + 1) * 60000 end

-- Serves the ring of class c while it has free slots; returns how many jobs it admitted.
local function admit_class(c, free)
  local ring = P .. ':ring:' .. c
  local celery_queue = celery_prefix ~= '' and (celery_prefix .. c) or nil
  local count = 0
  local function park(t)
    redis.call('LPOP', ring)
    redis.call('HSET', tenant_key(P, t), 'ring:' .. c, '0')
  end
  local function rotate(t)
    redis.call('LMOVE', ring, ring, 'LEFT', 'RIGHT')
    redis.call('HSET', tenant_key(P, t), 'credit:' .. c, '0')
  end

  while count < free and steps < max_steps do
    steps = steps + 1
    local t = redis.call('LINDEX', ring, 0)
    if not t then break end
    local tk = tenant_key(P, t)
    local h = redis.call('HMGET', tk, 'status', 'cap', 'inflight', 'weight', 'budget_usd', 'budget_tokens',
      'rpm', 'tpm', 'credit:' .. c)
    local q = queue_key(P, t, c)
    -- Per-minute counters exist only for tenants with a rate limit: 10,000 unlimited tenants write nothing.
    local rpm, tpm = num(h[7], -1), num(h[8], -1)
    local rk = P .. ':rate:' .. t .. ':' .. minute
    local r = {}
    if rpm >= 0 or tpm >= 0 then r = redis.call('HMGET', rk, 'requests', 'tokens') end
    local cap, inflight = num(h[2], 0), num(h[3], 0)
    if h[1] ~= 'active' or (cap > 0 and inflight >= cap) then
      park(t)  -- rung again when one of its jobs ends, or by a plan change or resume
    elseif rpm >= 0 and num(r[1], 0) >= rpm then
      park(t)
      redis.call('ZADD', P .. ':sleep', next_minute(), t)
    else
      local raw = redis.call('LPOP', q)
      if not raw then
        park(t)
      else
        redis.call('DECR', P .. ':backlog:' .. c)
        local env, et, eu = decode_job(raw)
        if env == nil then
          local reason = et  -- decode_job's second value, when there is no job
          redis.call('RPUSH', P .. ':dead', cjson.encode({tenant = t, class = c, at = now, reason = reason,
            message = raw}))
          dead = dead + 1
        else
          local sk = P .. ':spend:' .. t .. ':' .. month
          local verdict = budget_verdict(sk, num(h[5], -1), num(h[6], -1), eu, et)
          if verdict == 'admit' and tpm >= 0 and num(r[2], 0) > 0 and num(r[2], 0) + et > tpm then
            verdict = 'sleep'
          end
          if verdict == 'reject' then
            -- Failed durably by a dispatcher from P:failing, in the same step as it leaves the queue.
            redis.call('RPUSH', P .. ':failing',
              cjson.encode({reason = 'budget_exceeded', t = t, month = month, env = raw}))
            table.insert(rejected, env.job_id)
            table.insert(rejected, 'budget_exceeded')
            table.insert(rejected, raw)
          elseif verdict ~= 'admit' then
            -- Not now: back to the head of its queue. A tenant waiting for its reservations is rung again
            -- when one of its jobs ends; one over its tokens per minute when the minute is over.
            redis.call('LPUSH', q, raw)
            redis.call('INCR', P .. ':backlog:' .. c)
            park(t)
            if verdict == 'sleep' then redis.call('ZADD', P .. ':sleep', next_minute(), t) end
          else
            local attempt = math.floor(num(redis.call('HGET', P .. ':attempt', env.job_id), 1))
            redis.call('ZADD', P .. ':leases', now + ttl, env.job_id)
            redis.call('HSET', P .. ':lease', env.job_id,
              cjson.encode({t = t, c = c, a = attempt, eu = eu, et = et, month = month}))
            redis.call('HSET', P .. ':lease:env', env.job_id, raw)
            redis.call('HINCRBY', tk, 'inflight', 1)
            redis.call('INCR', P .. ':inflight:' .. c)
            redis.call('INCR', P .. ':inflight')
            hincr(sk, 'reserved_usd', eu)
            hincr(sk, 'reserved_tokens', et)
            if rpm >= 0 or tpm >= 0 then
              redis.call('HINCRBY', rk, 'requests', 1)
              hincr(rk, 'tokens', et)
              redis.call('EXPIRE', rk, 120)
            end
            table.insert(admitted, env.job_id)
            table.insert(admitted, attempt)
            table.insert(admitted, raw)
            if celery_queue then publish(celery_queue, env.job_id, attempt, raw, env.kind) end
            publish_event(P, env.job_id, 'admitted', 'queued', {attempt = attempt, class = c})
            count = count + 1
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
  return count
end

for _, c in ipairs(classes) do
  if fleet_free <= 0 or steps >= max_steps then break end
  if redis.call('EXISTS', P .. ':ring:' .. c) == 1 then
    local free = math.min(fleet_free, (cap_of[c] or 0) - num(redis.call('GET', P .. ':inflight:' .. c), 0))
    if free > 0 then fleet_free = fleet_free - admit_class(c, free) end
  end
end
return {admitted, rejected, dead}
