"""Which of the agent's MCP servers supplies the ERP data, and which (if any) can do research.

Roles come from the tools a server offers (the ERP contract's two tools; a Perplexity tool), not from its
name, so a real ERP connector or another research server slots in by registration alone. A registration
that lists its allowed tools is classified without starting it; a server whose environment variables are
unset is skipped with the reason, which is how "research only where its key is set" comes about.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field

from core.errors import TenantqError, ToolUnavailable
from mcp_clients.erp_contract import DESCRIBE_TOOL, READ_TOOL
from mcp_clients.pool import McpPool
from mcp_clients.transports import missing_env
from schemas.agents import AgentConfig
from schemas.mcp import McpServerConfig

RESEARCH_TOOLS = ("perplexity_ask", "perplexity_research", "perplexity_reason")
ERP_TOOLS = (DESCRIBE_TOOL, READ_TOOL)


@dataclass
class Sources:
    erp: McpServerConfig
    research: tuple[McpServerConfig, str] | None = None
    notes: list[str] = field(default_factory=list)


def agent_allows(agent: AgentConfig, server: str, tool: str) -> bool:
    """Agent-level tool allow-list: entries are `tool` or `server.tool`; empty allows everything."""
    allowed = agent.allowed_tools
    return not allowed or tool in allowed or f"{server}.{tool}" in allowed


async def find_sources(pool: McpPool, configs: list[McpServerConfig], agent: AgentConfig, tenant_id: str, *,
                       want_research: bool, environ: Mapping[str, str] | None = None) -> Sources:
    env = os.environ if environ is None else environ
    erp: McpServerConfig | None = None
    research: tuple[McpServerConfig, str] | None = None
    notes: list[str] = []
    failures: list[TenantqError] = []
    for config in configs:
        missing = missing_env(config, env)
        if missing:
            notes.append(f"MCP server {config.name!r} skipped: {', '.join(missing)} not set in the worker.")
            continue
        tools = config.allowed_tools
        if not tools and (erp is None or (want_research and research is None)):
            try:
                tools = await pool.list_tools(config, tenant_id=tenant_id)
            except TenantqError as exc:
                failures.append(exc)
                notes.append(f"MCP server {config.name!r} unavailable: {exc.message}")
                continue
        usable = [t for t in tools if agent_allows(agent, config.name, t)]
        if erp is None and all(t in usable for t in ERP_TOOLS):
            erp = config
        elif research is None:
            tool = next((t for t in RESEARCH_TOOLS if t in usable), None)
            research = (config, tool) if tool else None
    if erp is None:
        if len(failures) == 1:
            raise failures[0]
        names = ", ".join(c.name for c in configs) or "none"
        raise ToolUnavailable(
            f"None of the agent's MCP servers ({names}) offers the ERP tools {', '.join(ERP_TOOLS)} to this "
            f"agent. {' '.join(notes)} Register an ERP server and name it in the agent's mcp_servers.".strip(),
            tool=DESCRIBE_TOOL,
        )
    return Sources(erp=erp, research=research, notes=notes)
