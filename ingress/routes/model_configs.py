"""Model configs (admin token): create, list, read, replace; each keyed by its `name`."""

from __future__ import annotations

from fastapi import APIRouter, Depends
from fastapi.concurrency import run_in_threadpool

from ingress.auth import admin
from ingress.project_auth import ADMIN_ACTOR
from ingress.routes.paging import DEFAULT, Cursor, Limit
from schemas.agents import ModelConfig
from schemas.orchestration import Page
from tenancy.catalog import MODEL_CONFIGS

router = APIRouter(prefix="/api/v1/master/model-configs", dependencies=[Depends(admin)], tags=["master: model configs"])


@router.post("", status_code=201, response_model=ModelConfig)
async def create_model_config(item: ModelConfig) -> ModelConfig:
    return await run_in_threadpool(MODEL_CONFIGS.create, item, ADMIN_ACTOR)


@router.get("", response_model=Page[ModelConfig])
async def list_model_configs(limit: Limit = DEFAULT, cursor: Cursor = None) -> Page[ModelConfig]:
    return await run_in_threadpool(MODEL_CONFIGS.page, limit, cursor)


@router.get("/{name}", response_model=ModelConfig)
async def get_model_config(name: str) -> ModelConfig:
    return await run_in_threadpool(MODEL_CONFIGS.get, name)


@router.put("/{name}", response_model=ModelConfig)
async def replace_model_config(name: str, item: ModelConfig) -> ModelConfig:
    return await run_in_threadpool(MODEL_CONFIGS.replace, name, item, ADMIN_ACTOR)
