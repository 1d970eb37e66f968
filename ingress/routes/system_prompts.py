"""System prompts (admin token): create (version 1), list, read with every version, add a version (PUT)."""

from __future__ import annotations

from fastapi import APIRouter, Depends
from fastapi.concurrency import run_in_threadpool

from ingress.auth import admin
from ingress.project_auth import ADMIN_ACTOR
from ingress.routes.paging import DEFAULT, Cursor, Limit
from schemas.orchestration import Page, SystemPromptSpec, SystemPromptSummary, SystemPromptUpdate, SystemPromptView
from tenancy import prompt_versions

router = APIRouter(prefix="/api/v1/master/system-prompts", dependencies=[Depends(admin)],
                   tags=["master: system prompts"])


@router.post("", status_code=201, response_model=SystemPromptView)
async def create_prompt(spec: SystemPromptSpec) -> SystemPromptView:
    return await run_in_threadpool(prompt_versions.create, spec, ADMIN_ACTOR)


@router.get("", response_model=Page[SystemPromptSummary])
async def list_prompts(limit: Limit = DEFAULT, cursor: Cursor = None) -> Page[SystemPromptSummary]:
    return await run_in_threadpool(prompt_versions.list_prompts, limit, cursor)


@router.get("/{prompt_id}", response_model=SystemPromptView)
async def get_prompt(prompt_id: str) -> SystemPromptView:
    return await run_in_threadpool(prompt_versions.get, prompt_id)


@router.put("/{prompt_id}", response_model=SystemPromptView)
async def add_version(prompt_id: str, change: SystemPromptUpdate) -> SystemPromptView:
    return await run_in_threadpool(prompt_versions.update, prompt_id, change, ADMIN_ACTOR)
