"""Health of what the fleet stands on (admin token): 200 when the stores answer (`status` ok, or degraded when
a priority class has no live worker), 503 when the master database or Redis does not."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import JSONResponse

from ingress.auth import admin
from tenancy import fleet_health

router = APIRouter(prefix="/api/v1/master", dependencies=[Depends(admin)], tags=["master: health"])


@router.get("/health", responses={503: {"description": "The master database or Redis is unreachable."}})
async def health() -> Any:
    report = await run_in_threadpool(fleet_health.report)
    return JSONResponse(report, status_code=503 if report["status"] == "down" else 200)
