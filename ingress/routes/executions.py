"""A project's executions (admin token or the project's key): run one, list them, read one and its result.

An execution is a job: `/v1/jobs/{id}` shows the same record. A synchronous run answers 200 with the finished
execution, or 202 with its id when the instance's timeout passes first; an asynchronous one answers 202.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, Query
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import JSONResponse

from ingress import execution_submit
from ingress.project_auth import ProjectCaller
from ingress.routes.paging import DEFAULT, Cursor, Limit
from schemas.jobs import JobKind, JobStatus
from schemas.orchestration import (
    ExecutionAccepted,
    ExecutionCreate,
    ExecutionResult,
    ExecutionSummary,
    ExecutionView,
    Page,
)
from tenancy import executions

router = APIRouter(prefix="/api/v1/projects/{project_id}/executions", tags=["projects: executions"])


@router.post("", status_code=202, response_model=ExecutionAccepted, responses={
    200: {"model": ExecutionView, "description": "Synchronous: the execution ended within the instance's timeout."},
    202: {"model": ExecutionAccepted, "description": "Queued (asynchronous), or still running at the timeout."}})
async def run_execution(body: ExecutionCreate, caller: ProjectCaller) -> Any:
    accepted, timeout_s = await run_in_threadpool(execution_submit.start, caller.project_id, body)
    if not body.async_execution and await execution_submit.wait_finished(caller.project_id, accepted.job_id,
                                                                          timeout_s):
        view = await run_in_threadpool(executions.get, caller.project_id, accepted.job_id)
        return JSONResponse(view.model_dump(mode="json"), status_code=200)
    status_url = f"/api/v1/projects/{caller.project_id}/executions/{accepted.job_id}"
    current = accepted.status
    if not body.async_execution:
        current = (await run_in_threadpool(executions.get, caller.project_id, accepted.job_id)).status
    answer = ExecutionAccepted(execution_id=accepted.job_id, status=current, duplicate=accepted.duplicate,
                               status_url=status_url, result_url=f"{status_url}/result")
    return JSONResponse(answer.model_dump(mode="json"), status_code=202, headers={"Location": status_url})


@router.get("", response_model=Page[ExecutionSummary])
async def list_executions(
    caller: ProjectCaller, limit: Limit = DEFAULT, cursor: Cursor = None, status: JobStatus | None = None,
    instance_id: Annotated[str | None, Query(max_length=100)] = None, kind: JobKind | None = None,
    since: Annotated[datetime | None, Query(alias="from", description="Enqueued at or after (ISO 8601).")] = None,
    until: Annotated[datetime | None, Query(alias="to", description="Enqueued before (ISO 8601).")] = None,
) -> Page[ExecutionSummary]:
    return await run_in_threadpool(lambda: executions.page(
        caller.project_id, limit=limit, cursor=cursor, status=status, instance_id=instance_id, kind=kind,
        since=since, until=until))


@router.get("/{execution_id}", response_model=ExecutionView)
async def get_execution(execution_id: str, caller: ProjectCaller) -> ExecutionView:
    return await run_in_threadpool(executions.get, caller.project_id, execution_id)


@router.get("/{execution_id}/result", response_model=ExecutionResult, responses={
    202: {"model": ExecutionResult, "description": "Not ended yet: `result` is null; poll again."}})
async def get_result(execution_id: str, caller: ProjectCaller) -> Any:
    found = await run_in_threadpool(executions.result, caller.project_id, execution_id)
    return JSONResponse(found.model_dump(mode="json"), status_code=200 if found.status.finished else 202)
