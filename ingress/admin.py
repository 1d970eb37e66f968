"""Operator endpoints (admin token): tenants, their plans and keys, and the queue report.

Out-of-range plans and invalid tenant ids are refused here with the field errors, before anything is
written; a suspended tenant's new jobs are refused at submit while its queued jobs wait for its resumption.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends
from fastapi.concurrency import run_in_threadpool
from pydantic import BaseModel

from ingress.auth import admin
from schemas.tenants import Plan, Tenant, TenantCreate, TenantStatus
from tenancy import registry
from tenancy.apikeys import issue_key
from tenancy.visibility import queue_report

router = APIRouter(prefix="/v1", dependencies=[Depends(admin)], tags=["admin"])


class TenantCreated(BaseModel):
    tenant: Tenant
    api_key: str


class ApiKey(BaseModel):
    api_key: str


@router.post("/tenants", status_code=201, response_model=TenantCreated)
async def create_tenant(spec: TenantCreate) -> TenantCreated:
    tenant, key = await run_in_threadpool(registry.create_tenant, spec)
    return TenantCreated(tenant=tenant, api_key=key)


@router.get("/tenants", response_model=list[Tenant])
async def list_tenants() -> list[Tenant]:
    return await run_in_threadpool(registry.list_tenants)


@router.get("/tenants/{tenant_id}", response_model=Tenant)
async def get_tenant(tenant_id: str) -> Tenant:
    return await run_in_threadpool(registry.get_tenant, tenant_id)


@router.put("/tenants/{tenant_id}/plan", response_model=Tenant)
async def update_plan(tenant_id: str, plan: Plan) -> Tenant:
    return await run_in_threadpool(registry.update_plan, tenant_id, plan)


@router.post("/tenants/{tenant_id}/suspend", response_model=Tenant)
async def suspend(tenant_id: str) -> Tenant:
    return await run_in_threadpool(registry.set_status, tenant_id, TenantStatus.suspended)


@router.post("/tenants/{tenant_id}/resume", response_model=Tenant)
async def resume(tenant_id: str) -> Tenant:
    return await run_in_threadpool(registry.set_status, tenant_id, TenantStatus.active)


@router.post("/tenants/{tenant_id}/keys", status_code=201, response_model=ApiKey)
async def new_key(tenant_id: str) -> ApiKey:
    await run_in_threadpool(registry.get_tenant, tenant_id)
    return ApiKey(api_key=await run_in_threadpool(issue_key, tenant_id))


@router.get("/queues")
async def queues() -> dict[str, Any]:
    return await run_in_threadpool(queue_report)
