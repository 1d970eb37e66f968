-- ARGV: prefix, entry, cost_micro_usd, tokens, month. A dispatcher has recorded the end of a job from the
-- list of jobs to fail (refused at admission, or out of attempts): the entry leaves the list and, when the
-- job had in fact ended with usage that was never charged, that spend is booked, both at once, so a
-- dispatcher killed in between neither loses the entry nor charges it twice. Returns 1, or 0 when another
-- dispatcher settled the entry first.
local P, entry, usd, tokens, month = ARGV[1], ARGV[2], tonumber(ARGV[3]), tonumber(ARGV[4]), ARGV[5]
if redis.call('LREM', P .. ':failing', 1, entry) == 0 then return 0 end
local t = cjson.decode(entry).t
if t and (usd ~= 0 or tokens ~= 0) then
  local sk = P .. ':spend:' .. t .. ':' .. month
  hincr(sk, 'usd', usd)
  hincr(sk, 'tokens', tokens)
end
return 1
