"""One-call setups of master data (admin token); each is idempotent."""

from __future__ import annotations

from fastapi import APIRouter, Depends
from fastapi.concurrency import run_in_threadpool

from ingress.auth import admin
from ingress.project_auth import ADMIN_ACTOR
from tenancy import erp_defaults

router = APIRouter(prefix="/api/v1/master/setup", dependencies=[Depends(admin)], tags=["master: setup"])


@router.post("/erp-defaults")
async def erp_setup() -> dict[str, list[str]]:
    """The ERP exception-management template, its prompt, the ERP tools and the bundled ERP MCP server, each
    made where missing: `created` and `existing` name them (`entity:id`)."""
    return await run_in_threadpool(erp_defaults.ensure, ADMIN_ACTOR)
