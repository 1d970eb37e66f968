"""A project's agent instances (admin token or the project's key): create, list, read, replace."""

from __future__ import annotations

from fastapi import APIRouter
from fastapi.concurrency import run_in_threadpool

from ingress.project_auth import ProjectCaller
from ingress.routes.paging import DEFAULT, Cursor, Limit
from schemas.orchestration import AgentInstance, AgentInstanceSpec, Page
from tenancy import instances

router = APIRouter(prefix="/api/v1/projects/{project_id}/agent-instances", tags=["projects: agent instances"])


@router.post("", status_code=201, response_model=AgentInstance)
async def create_instance(spec: AgentInstanceSpec, caller: ProjectCaller) -> AgentInstance:
    return await run_in_threadpool(instances.create, caller.project_id, spec, caller.actor)


@router.get("", response_model=Page[AgentInstance])
async def list_instances(caller: ProjectCaller, limit: Limit = DEFAULT, cursor: Cursor = None) -> Page[AgentInstance]:
    return await run_in_threadpool(instances.list_instances, caller.project_id, limit, cursor)


@router.get("/{instance_id}", response_model=AgentInstance)
async def get_instance(instance_id: str, caller: ProjectCaller) -> AgentInstance:
    return await run_in_threadpool(instances.get, caller.project_id, instance_id)


@router.put("/{instance_id}", response_model=AgentInstance)
async def replace_instance(instance_id: str, spec: AgentInstanceSpec, caller: ProjectCaller) -> AgentInstance:
    return await run_in_threadpool(instances.update, caller.project_id, instance_id, spec, caller.actor)
