"""Tools (admin token): create, list, read, replace; each keyed by its `name`."""

from __future__ import annotations

from fastapi import APIRouter, Depends
from fastapi.concurrency import run_in_threadpool

from ingress.auth import admin
from ingress.project_auth import ADMIN_ACTOR
from ingress.routes.paging import DEFAULT, Cursor, Limit
from schemas.orchestration import Page, ToolSpec
from tenancy.catalog import TOOLS

router = APIRouter(prefix="/api/v1/master/tools", dependencies=[Depends(admin)], tags=["master: tools"])


@router.post("", status_code=201, response_model=ToolSpec)
async def create_tool(item: ToolSpec) -> ToolSpec:
    return await run_in_threadpool(TOOLS.create, item, ADMIN_ACTOR)


@router.get("", response_model=Page[ToolSpec])
async def list_tools(limit: Limit = DEFAULT, cursor: Cursor = None) -> Page[ToolSpec]:
    return await run_in_threadpool(TOOLS.page, limit, cursor)


@router.get("/{name}", response_model=ToolSpec)
async def get_tool(name: str) -> ToolSpec:
    return await run_in_threadpool(TOOLS.get, name)


@router.put("/{name}", response_model=ToolSpec)
async def replace_tool(name: str, item: ToolSpec) -> ToolSpec:
    return await run_in_threadpool(TOOLS.replace, name, item, ADMIN_ACTOR)
