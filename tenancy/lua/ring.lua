-- ARGV: prefix, tenant. After a plan change or a resume: the tenant rejoins every ring where it has work.
ring_tenant(ARGV[1], ARGV[2])
wake(ARGV[1])
return 1
