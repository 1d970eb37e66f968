-- One failed authentication of a client address: counts it in the address's window, which its first
-- failure opens, and returns the count. KEYS[1] the address's counter, ARGV[1] the window in milliseconds.
local count = redis.call('INCR', KEYS[1])
if redis.call('PTTL', KEYS[1]) < 0 then
  redis.call('PEXPIRE', KEYS[1], ARGV[1])
end
return count
