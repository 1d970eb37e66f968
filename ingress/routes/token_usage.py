"""`GET /api/v1/projects/{project_id}/token-usage`: tokens and cost per instance, model or day, and in total."""

from __future__ import annotations

from datetime import date
from typing import Annotated

from fastapi import APIRouter, Query
from fastapi.concurrency import run_in_threadpool

from ingress.routes.project_access import PathProject
from schemas.reports import TokenUsageReport, UsageGroupBy
from tenancy import usage_report

router = APIRouter(prefix="/api/v1/projects/{project_id}", tags=["project views"])


@router.get("/token-usage", response_model=TokenUsageReport, responses={
    401: {"description": "No credentials, or unknown ones."},
    404: {"description": "No such project for these credentials."},
    422: {"description": "An invalid date or group_by, or a range over a year; it names the valid values."}})
async def token_usage(
    project_id: PathProject,
    start_date: Annotated[date | None, Query(description="First day (UTC); default: the 1st of this month.")]
    = None,
    end_date: Annotated[date | None, Query(description="Last day (UTC), inclusive; default: today.")] = None,
    group_by: UsageGroupBy = UsageGroupBy.instance,
) -> TokenUsageReport:
    return await run_in_threadpool(usage_report.report, project_id, start_date, end_date, group_by)
