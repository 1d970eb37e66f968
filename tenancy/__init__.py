"""Whose and where: the tenant registry, API keys, per-tenant databases and the per-tenant queues."""
