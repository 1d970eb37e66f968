"""Whether a project's ERP data can be read: the ERP MCP server its agent uses, reached the way an analysis
reaches it (same registration, same role detection, same pool), its tables and record counts, and the round
trip of the describe call. A server that cannot be reached is a status with the reason, not an error.
"""

from __future__ import annotations

import time

from core import aio
from core.errors import ToolError
from mcp_clients.erp_client import describe
from mcp_clients.pool import McpPool, default_pool
from mcp_clients.registry import load_servers
from schemas.erp_api import ErpStatus
from schemas.mcp import McpServerConfig
from tasks.erp_analysis.sources import find_sources
from tenancy.mongo import master_db
from tenancy.registry import agent_config

CHECK_TIMEOUT_S = 15.0
"""Longest a status check waits for the server (a first start generates the bundled ERP's data)."""


def erp_status(project_id: str, pool: McpPool | None = None) -> ErpStatus:
    pool = pool or default_pool()
    agent = agent_config(project_id)
    server: McpServerConfig | None = None
    try:
        configs = [_bounded(pool, c) for c in load_servers(master_db(), agent.mcp_servers)]
        sources = aio.run(find_sources(pool, configs, agent, project_id, want_research=False),
                          CHECK_TIMEOUT_S * max(1, len(configs)) + 5)
        server = sources.erp
        tools = aio.run(pool.list_tools(server, tenant_id=project_id), CHECK_TIMEOUT_S + 5)
        started = time.perf_counter()
        desc = aio.run(describe(pool, server, project_id), CHECK_TIMEOUT_S + 5)
        latency_ms = round((time.perf_counter() - started) * 1000, 2)
    except ToolError as error:
        return ErpStatus(project_id=project_id, reachable=False, server=error.context.get("server") or (
            server.name if server else None), reason=error.message, code=error.code)
    tables = {name: info.records for name, info in desc.tables.items()}
    return ErpStatus(project_id=project_id, reachable=True, server=server.name, tools=tools, company=desc.company,
                     as_of=desc.as_of, base_currency=desc.base_currency, tables=tables, records=desc.records,
                     latency_ms=latency_ms)


def _bounded(pool: McpPool, config: McpServerConfig) -> McpServerConfig:
    """The registration with a deadline a person waiting on a status can bear."""
    return config.model_copy(update={"timeout_s": min(pool.timeout_for(config), CHECK_TIMEOUT_S)})
