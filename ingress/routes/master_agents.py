"""Agent templates (admin token): create, list, read, replace."""

from __future__ import annotations

from fastapi import APIRouter, Depends
from fastapi.concurrency import run_in_threadpool

from ingress.auth import admin
from ingress.project_auth import ADMIN_ACTOR
from ingress.routes.paging import DEFAULT, Cursor, Limit
from schemas.orchestration import AgentTemplateSpec, AgentTemplateView, Page
from tenancy import templates

router = APIRouter(prefix="/api/v1/master/agents", dependencies=[Depends(admin)], tags=["master: agent templates"])


@router.post("", status_code=201, response_model=AgentTemplateView)
async def create_agent(spec: AgentTemplateSpec) -> AgentTemplateView:
    return await run_in_threadpool(templates.create, spec, ADMIN_ACTOR)


@router.get("", response_model=Page[AgentTemplateView])
async def list_agents(limit: Limit = DEFAULT, cursor: Cursor = None) -> Page[AgentTemplateView]:
    return await run_in_threadpool(templates.list_templates, limit, cursor)


@router.get("/{agent_id}", response_model=AgentTemplateView)
async def get_agent(agent_id: str) -> AgentTemplateView:
    return await run_in_threadpool(templates.get, agent_id)


@router.put("/{agent_id}", response_model=AgentTemplateView)
async def replace_agent(agent_id: str, spec: AgentTemplateSpec) -> AgentTemplateView:
    return await run_in_threadpool(templates.replace, agent_id, spec, ADMIN_ACTOR)
