"""ERP exception analysis: read a tenant's ERP through MCP, detect exceptions, report their business impact.

Entry point: `tasks.erp_analysis.handler.handle(ctx, payload)`.
"""
