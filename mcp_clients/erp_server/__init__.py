"""The bundled ERP MCP server: a synthetic ERP behind the `erp_describe` / `erp_read` contract.

It ships beside the clients as a stub beside its contract (`mcp_clients.erp_contract`): the demo and the
tests read ERP data through it over the real stdio transport, and a real connector replaces it by serving
the same two tools.
"""
