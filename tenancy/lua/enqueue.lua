-- ARGV: prefix, tenant, class, envelope. Appends a job to its tenant's queue and rings the tenant.
local P, t, c, envelope = ARGV[1], ARGV[2], ARGV[3], ARGV[4]
local status = redis.call('HGET', tenant_key(P, t), 'status')
if not status then return redis.error_reply('UNKNOWN_TENANT') end
if status ~= 'active' then return redis.error_reply('TENANT_SUSPENDED') end
local depth = redis.call('RPUSH', queue_key(P, t, c), envelope)
redis.call('INCR', P .. ':backlog:' .. c)
ring_tenant(P, t)
wake(P)
return depth
