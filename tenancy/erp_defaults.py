"""The ERP exception-management defaults: the `erp-analyst` template, its `erp_analysis` prompt, the ERP
tools and the bundled ERP MCP server (`erp`). Each is made only where it is missing, so calling this again
(`POST /api/v1/master/setup/erp-defaults`, every `tenantq up`) changes nothing an operator set, such as their
own `erp` server.
"""

from __future__ import annotations

from collections.abc import Callable

from core.errors import AlreadyExists
from mcp_clients.erp_contract import DESCRIBE_TOOL, READ_TOOL
from mcp_clients.registry import bundled_erp_server
from schemas.orchestration import AgentTemplateSpec, SystemPromptSpec, ToolSpec
from tenancy import prompt_versions, templates
from tenancy.catalog import MCP_SERVERS, TOOLS
from tenancy.mongo import master_db
from tenancy.seed import TEMPLATES, prompt_source

ERP_SERVER = "erp"
ERP_TEMPLATE = "erp-analyst"
ERP_PROMPT = "erp_analysis"
TOOL_DESCRIPTIONS = {
    DESCRIBE_TOOL: "Describe the ERP: company, as-of date, base currency and the tables with their sizes.",
    READ_TOOL: "Read one page of an ERP table (GL, open items, purchasing, inventory, sales, production, ...).",
}


def ensure(actor: str) -> dict[str, list[str]]:
    """Make what is missing; answers what was created and what existed already, as `entity:id`."""
    seeded = next(t for t in TEMPLATES if t.template_id == ERP_TEMPLATE)
    steps: list[tuple[str, str, str, Callable[[], object]]] = [
        ("system_prompts", "system_prompt", ERP_PROMPT, lambda: prompt_versions.create(SystemPromptSpec(
            prompt_id=ERP_PROMPT, name="ERP exception analysis", template=prompt_source(ERP_PROMPT),
            description="Narrative of an ERP exception report: summary, root causes, recommended actions."),
            actor)),
        ("mcp_servers", "mcp_server", ERP_SERVER, lambda: MCP_SERVERS.create(bundled_erp_server(ERP_SERVER), actor)),
        *[("tools", "tool", tool, _tool(tool, actor)) for tool in TOOL_DESCRIPTIONS],
        ("agent_templates", "agent_template", ERP_TEMPLATE, lambda: templates.create(AgentTemplateSpec(
            **seeded.model_dump(exclude={"template_id"}, exclude_none=True), agent_id=ERP_TEMPLATE,
            description="ERP exception management: findings from the ERP over MCP, a narrative by the model."),
            actor)),
    ]
    created: list[str] = []
    existing: list[str] = []
    for collection, entity, name, make in steps:
        if master_db()[collection].find_one({"_id": name}, {"_id": 1}) is not None:
            existing.append(f"{entity}:{name}")
            continue
        try:
            make()
            created.append(f"{entity}:{name}")
        except AlreadyExists:  # made meanwhile by a concurrent call
            existing.append(f"{entity}:{name}")
    return {"created": created, "existing": existing}


def _tool(name: str, actor: str) -> Callable[[], object]:
    return lambda: TOOLS.create(ToolSpec(name=name, description=TOOL_DESCRIPTIONS[name], mcp_server=ERP_SERVER), actor)
