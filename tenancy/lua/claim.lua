-- ARGV: prefix, job_id, attempt, expiry_ms. A worker starting a job claims its lease: {1, kept outcome or
-- false} when the lease is this delivery's (and it is renewed), 0 for a stale delivery whose lease expired
-- and was handed on. The kept outcome is an earlier delivery's finished run that was never recorded. A
-- claimed lease that expires means a lost worker; one that expires unclaimed, a message that waited too
-- long or was lost on its way, which costs the job no attempt.
local P, job_id, attempt, expiry = ARGV[1], ARGV[2], tonumber(ARGV[3]), ARGV[4]
local meta = redis.call('HGET', P .. ':lease', job_id)
if not meta or cjson.decode(meta).a ~= attempt then return 0 end
redis.call('ZADD', P .. ':leases', 'XX', expiry, job_id)
redis.call('HSET', P .. ':claimed', job_id, attempt)
publish_event(P, job_id, 'running', 'running', {attempt = attempt})
return {1, redis.call('HGET', P .. ':kept', job_id)}
