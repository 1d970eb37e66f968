"""`GET /api/v1/projects/{project_id}/audit-log`: job events and instance changes, newest first, by cursor."""

from __future__ import annotations

from datetime import date
from typing import Annotated

from fastapi import APIRouter, Query
from fastapi.concurrency import run_in_threadpool

from ingress.routes.project_access import PathProject
from schemas.audit import AuditPage
from tenancy import audit_view
from tenancy.dated_pages import MAX_LIMIT

router = APIRouter(prefix="/api/v1/projects/{project_id}", tags=["project views"])


@router.get("/audit-log", response_model=AuditPage, responses={
    401: {"description": "No credentials, or unknown ones."},
    404: {"description": "No such project for these credentials."},
    422: {"description": "An invalid date, limit or cursor."}})
async def audit_log(
    project_id: PathProject,
    action: Annotated[str | None, Query(min_length=1, max_length=200, description="A job event (queued, started, "
                                        "model_call, tool_call, succeeded, failed, ...) or a change's action.")]
    = None,
    start_date: Annotated[date | None, Query(description="First day (UTC).")] = None,
    end_date: Annotated[date | None, Query(description="Last day (UTC), inclusive.")] = None,
    limit: Annotated[int, Query(ge=1, le=MAX_LIMIT)] = 50,
    cursor: Annotated[str | None, Query(max_length=500, description="`next_cursor` of the previous page.")] = None,
) -> AuditPage:
    return await run_in_threadpool(audit_view.page, project_id, action=action, start=start_date, end=end_date,
                                   limit=limit, cursor=cursor)
