-- ARGV: prefix, now_ms, max_attempts, limit. Leases whose worker stopped renewing them (it was killed, or
-- the message was lost between admission and publishing) give their slot back; the job goes to the front
-- of its tenant's queue for another delivery, or, once it has lost max_attempts workers, to the list of
-- jobs to fail (P:failing), which dispatchers record durably. Handed-back jobs whose delay is over, and
-- rate-limited tenants whose minute is over, rejoin their queues and the rings.
local P, now, max_attempts, limit = ARGV[1], tonumber(ARGV[2]), tonumber(ARGV[3]), tonumber(ARGV[4])
local requeued, exhausted = 0, {}
for _, job_id in ipairs(redis.call('ZRANGEBYSCORE', P .. ':leases', '-inf', now, 'LIMIT', 0, limit)) do
  local m = release_lease(P, job_id)
  if m == nil then
    redis.call('ZREM', P .. ':leases', job_id)
  elseif not m.claimed or redis.call('HINCRBY', P .. ':lost', job_id, 1) < max_attempts then
    -- The delivery number travels in the lease, so the envelope is stored untouched (no re-encoding).
    redis.call('LPUSH', queue_key(P, m.t, m.c), m.env)
    redis.call('HSET', P .. ':attempt', job_id, m.a + 1)
    redis.call('INCR', P .. ':backlog:' .. m.c)
    ring_tenant(P, m.t)
    requeued = requeued + 1
  else
    table.insert(exhausted, m.env)
    redis.call('RPUSH', P .. ':failing', cjson.encode({reason = 'exhausted', t = m.t, month = m.month, env = m.env}))
    forget_job(P, job_id)
    ring_tenant(P, m.t)
  end
end
for _, job_id in ipairs(redis.call('ZRANGEBYSCORE', P .. ':delayed', '-inf', now, 'LIMIT', 0, limit)) do
  redis.call('ZREM', P .. ':delayed', job_id)
  local raw = redis.call('HGET', P .. ':delayed:job', job_id)
  redis.call('HDEL', P .. ':delayed:job', job_id)
  if raw then
    local d = cjson.decode(raw)
    redis.call('LPUSH', queue_key(P, d.t, d.c), d.env)
    redis.call('INCR', P .. ':backlog:' .. d.c)
    ring_tenant(P, d.t)
    requeued = requeued + 1
  end
end
for _, t in ipairs(redis.call('ZRANGEBYSCORE', P .. ':sleep', '-inf', now)) do
  redis.call('ZREM', P .. ':sleep', t)
  ring_tenant(P, t)
end
if requeued > 0 then wake(P) end
return {requeued, exhausted}
