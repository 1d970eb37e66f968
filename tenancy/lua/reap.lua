-- ARGV: prefix, now_ms, max_attempts, limit. Leases whose worker stopped renewing them (it was killed, or
-- the message was lost between admission and publishing) give their slot back; the job goes to the front
-- of its tenant's queue for another attempt, or, out of attempts, is returned so it can be marked failed.
-- Rate-limited tenants whose minute is over rejoin the rings.
local P, now, max_attempts, limit = ARGV[1], tonumber(ARGV[2]), tonumber(ARGV[3]), tonumber(ARGV[4])
local requeued, exhausted = 0, {}
for _, job_id in ipairs(redis.call('ZRANGEBYSCORE', P .. ':leases', '-inf', now, 'LIMIT', 0, limit)) do
  local m = release_lease(P, job_id)
  if m == nil then
    redis.call('ZREM', P .. ':leases', job_id)
  elseif m.a < max_attempts then
    -- The attempt number travels in the lease, so the envelope is stored untouched (no re-encoding).
    redis.call('LPUSH', queue_key(P, m.t, m.c), m.env)
    redis.call('HSET', P .. ':attempt', job_id, m.a + 1)
    redis.call('INCR', P .. ':backlog:' .. m.c)
    ring_tenant(P, m.t)
    requeued = requeued + 1
  else
    table.insert(exhausted, m.env)
    redis.call('HDEL', P .. ':attempt', job_id)
    ring_tenant(P, m.t)
  end
end
for _, t in ipairs(redis.call('ZRANGEBYSCORE', P .. ':sleep', '-inf', now)) do
  redis.call('ZREM', P .. ':sleep', t)
  ring_tenant(P, t)
end
if requeued > 0 then wake(P) end
return {requeued, exhausted}
