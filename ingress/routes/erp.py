"""The ERP routes: the state of the project's ERP server, and ERP exception analyses, async or waited for.

The project is the key's (the admin token names it with ?project_id=). Analyses are ordinary `erp_analysis`
jobs through the ordinary submit path, so budgets, fairness, idempotency and the audit trail apply as to any
job; quick-analysis waits for its job on the job's live updates, at most `wait_s`.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query, Response
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import JSONResponse

from ingress.routes.project_access import KeyProject
from ingress.submit import submit
from ingress.waiting import until_ended
from schemas.erp_api import ErpAnalyzeRequest, ErpExecution, ErpQuickRequest, ErpStatus, ErpSubmitted
from tasks.erp_analysis.status import erp_status
from tenancy import erp_view

router = APIRouter(prefix="/api/v1/erp", tags=["erp"])
QUICK_WAIT_MAX_S = 120.0
ANALYSIS = "/api/v1/erp/analyze/{execution_id}"
REFUSALS: dict[int | str, dict[str, str]] = {
    401: {"description": "No credentials, or unknown ones."},
    402: {"description": "This month's budget is spent; nothing was started."},
    403: {"description": "The project is suspended; nothing was started."},
    404: {"description": "No such project for these credentials."},
    422: {"description": "An invalid request (field errors); nothing was started."}}


@router.get("/status", response_model=ErpStatus, responses={
    503: {"model": ErpStatus, "description": "The ERP server cannot be reached; `reason` says why."}})
async def status(project_id: KeyProject) -> ErpStatus | JSONResponse:
    answer = await run_in_threadpool(erp_status, project_id)
    if not answer.reachable:
        return JSONResponse(answer.model_dump(mode="json"), status_code=503)
    return answer


@router.post("/analyze", status_code=202, response_model=ErpSubmitted, responses=REFUSALS)
async def analyze(request: ErpAnalyzeRequest, project_id: KeyProject, response: Response) -> ErpSubmitted:
    submitted = await run_in_threadpool(submit, project_id, request.job())
    response.headers["Location"] = ANALYSIS.format(execution_id=submitted.job_id)
    return ErpSubmitted(execution_id=submitted.job_id, status=submitted.status, duplicate=submitted.duplicate)


@router.get("/analyze/{execution_id}", response_model=ErpExecution, responses={
    404: {"description": "No ERP analysis of this id in the project."}})
async def analysis(execution_id: str, project_id: KeyProject) -> ErpExecution:
    return await run_in_threadpool(erp_view.analysis, project_id, execution_id)


@router.post("/quick-analysis", response_model=ErpExecution, responses={
    202: {"model": ErpExecution, "description": "Not done within wait_s: poll the Location."}, **REFUSALS})
async def quick_analysis(
    request: ErpQuickRequest, project_id: KeyProject, response: Response,
    wait_s: Annotated[float, Query(gt=0, le=QUICK_WAIT_MAX_S, description="Longest wait for the report.")]
    = QUICK_WAIT_MAX_S,
) -> ErpExecution:
    submitted = await run_in_threadpool(submit, project_id, request.job(quick=True))
    view = await until_ended(project_id, submitted.job_id, wait_s)
    if not view.status.finished:
        response.status_code = 202
        response.headers["Location"] = ANALYSIS.format(execution_id=view.job_id)
    return erp_view.as_execution(view)
