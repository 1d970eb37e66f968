-- ARGV: prefix, job_id, attempt, cost_micro_usd, tokens[, event]. A job's outcome is recorded: its slot and
-- reservation are given back, the real spend is booked in the month it was admitted (once: only the
-- delivery holding the lease books it), its kept outcome is dropped, its tenant rejoins the rings, and the
-- final event (JSON, tenancy/events.py), when given, is published on the job's channel.
-- Returns 1, or 0 when the lease was no longer this delivery's (it expired and the job was handed on).
local P, job_id, attempt = ARGV[1], ARGV[2], tonumber(ARGV[3])
local usd, tokens = tonumber(ARGV[4]), tonumber(ARGV[5])
local meta = redis.call('HGET', P .. ':lease', job_id)
if not meta or cjson.decode(meta).a ~= attempt then return 0 end
local m = release_lease(P, job_id)
local sk = P .. ':spend:' .. m.t .. ':' .. m.month
hincr(sk, 'usd', usd)
hincr(sk, 'tokens', tokens)
redis.call('HINCRBY', sk, 'jobs', 1)
forget_job(P, job_id)
ring_tenant(P, m.t)
wake(P)
if ARGV[6] and ARGV[6] ~= '' then redis.call('PUBLISH', P .. ':events:' .. job_id, ARGV[6]) end
return 1
