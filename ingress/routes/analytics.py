"""`GET /api/v1/projects/{project_id}/analytics/dashboard`: the project's month at a glance."""

from __future__ import annotations

from fastapi import APIRouter
from fastapi.concurrency import run_in_threadpool

from ingress.routes.project_access import PathProject
from schemas.reports import Dashboard
from tenancy import analytics

router = APIRouter(prefix="/api/v1/projects/{project_id}/analytics", tags=["project views"])


@router.get("/dashboard", response_model=Dashboard, responses={
    401: {"description": "No credentials, or unknown ones."},
    404: {"description": "No such project for these credentials."}})
async def dashboard(project_id: PathProject) -> Dashboard:
    return await run_in_threadpool(analytics.dashboard, project_id)
