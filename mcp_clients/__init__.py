"""Reaching MCP tool servers: registrations, a per-process session pool, and the ERP data contract.

- `registry.load_servers(db, names)`: the agent's servers from the master database (`mcp_servers`).
- `pool.default_pool()`: sessions reused across jobs on the process loop; deadlines, retries, restarts.
- `erp_client.fetch_snapshot(pool, server, tenant_id, tables)`: typed, validated ERP tables over MCP.
- `erp_server`: the bundled synthetic ERP server that speaks `erp_contract`.
"""
