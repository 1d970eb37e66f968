"""The orchestration API over the fleet: master data (`/api/v1/master/...`, admin token) and each project's
agent instances and executions (`/api/v1/projects/{project_id}/...`, admin token or the project's key).
One router module per resource, each calling one service of `tenancy/`."""

from __future__ import annotations

from fastapi import APIRouter

from ingress.routes import (
    agent_instances,
    executions,
    master_agents,
    master_health,
    master_projects,
    master_setup,
    mcp_servers,
    model_configs,
    system_prompts,
    tools,
)

router = APIRouter()
for module in (master_projects, master_agents, system_prompts, model_configs, tools, mcp_servers, master_setup,
               master_health, agent_instances, executions):
    router.include_router(module.router)
