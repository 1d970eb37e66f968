-- ARGV: prefix, expiry_ms, job_id... Renews the leases of the jobs a worker is running.
local P, expiry = ARGV[1], ARGV[2]
local renewed = 0
for i = 3, #ARGV do
  renewed = renewed + redis.call('ZADD', P .. ':leases', 'XX', 'CH', expiry, ARGV[i])
end
return renewed
