-- ARGV: prefix, job_id, attempt, due_ms. A running job that cannot go on now (every model down, MongoDB
-- unreachable) gives its slot and reservation back and waits in the delayed set until due_ms, then goes
-- to the front of its tenant's queue as the next delivery. Its kept outcome, if any, stays.
-- Returns 1, or 0 when the lease was no longer this delivery's.
local P, job_id, attempt, due = ARGV[1], ARGV[2], tonumber(ARGV[3]), tonumber(ARGV[4])
local meta = redis.call('HGET', P .. ':lease', job_id)
if not meta or cjson.decode(meta).a ~= attempt then return 0 end
local m = release_lease(P, job_id)
redis.call('HSET', P .. ':attempt', job_id, m.a + 1)
redis.call('ZADD', P .. ':delayed', due, job_id)
redis.call('HSET', P .. ':delayed:job', job_id, cjson.encode({t = m.t, c = m.c, env = m.env}))
ring_tenant(P, m.t)
wake(P)
return 1
