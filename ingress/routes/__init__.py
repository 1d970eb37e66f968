"""The orchestration API over the fleet, one router module per resource, each calling one service of
`tenancy/`: master data (`/api/v1/master/...`, admin token), each project's agent instances, executions,
token usage, dashboard and audit log (`/api/v1/projects/{project_id}/...`, admin token or the project's key),
the ERP routes (`/api/v1/erp/...`) and the deprecated dynamic-agent aliases (`/api/v1/dynamic/...`)."""

from fastapi import APIRouter

from ingress.routes import (
    agent_instances,
    analytics,
    audit_log,
    dynamic,
    erp,
    executions,
    master_agents,
    master_health,
    master_projects,
    master_setup,
    mcp_servers,
    model_configs,
    system_prompts,
    token_usage,
    tools,
)

router = APIRouter()
for module in (master_projects, master_agents, system_prompts, model_configs, tools, mcp_servers, master_setup,
               master_health, agent_instances, executions, token_usage, analytics, audit_log, erp, dynamic):
    router.include_router(module.router)
