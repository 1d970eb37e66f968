"""MCP servers (admin token): create, list, read, replace; each keyed by its `name`."""

from __future__ import annotations

from fastapi import APIRouter, Depends
from fastapi.concurrency import run_in_threadpool

from ingress.auth import admin
from ingress.project_auth import ADMIN_ACTOR
from ingress.routes.paging import DEFAULT, Cursor, Limit
from schemas.mcp import McpServerConfig
from schemas.orchestration import Page
from tenancy.catalog import MCP_SERVERS

router = APIRouter(prefix="/api/v1/master/mcp-servers", dependencies=[Depends(admin)], tags=["master: MCP servers"])


@router.post("", status_code=201, response_model=McpServerConfig)
async def create_mcp_server(item: McpServerConfig) -> McpServerConfig:
    return await run_in_threadpool(MCP_SERVERS.create, item, ADMIN_ACTOR)


@router.get("", response_model=Page[McpServerConfig])
async def list_mcp_servers(limit: Limit = DEFAULT, cursor: Cursor = None) -> Page[McpServerConfig]:
    return await run_in_threadpool(MCP_SERVERS.page, limit, cursor)


@router.get("/{name}", response_model=McpServerConfig)
async def get_mcp_server(name: str) -> McpServerConfig:
    return await run_in_threadpool(MCP_SERVERS.get, name)


@router.put("/{name}", response_model=McpServerConfig)
async def replace_mcp_server(name: str, item: McpServerConfig) -> McpServerConfig:
    return await run_in_threadpool(MCP_SERVERS.replace, name, item, ADMIN_ACTOR)
