"""A project's ERP analyses seen as executions: their state, and their report once they succeeded."""

from __future__ import annotations

from core.errors import JobNotFound
from schemas.erp import ErpReport
from schemas.erp_api import ErpExecution
from schemas.jobs import JobKind, JobView
from tenancy import jobs


def analysis(project_id: str, execution_id: str) -> ErpExecution:
    """The analysis; JobNotFound for an unknown id, another project's, or an execution of another kind."""
    view = jobs.view(project_id, execution_id)
    if view.kind is not JobKind.erp_analysis:
        raise JobNotFound(f"Execution {execution_id!r} of this project is a {view.kind.value} job, not an ERP "
                          "analysis; read it with GET /v1/jobs/{id}.", tenant_id=project_id, job_id=execution_id)
    return as_execution(view)


def as_execution(view: JobView) -> ErpExecution:
    report = ErpReport.model_validate(view.result) if view.result else None
    return ErpExecution(execution_id=view.job_id, project_id=view.tenant_id, status=view.status, report=report,
                        error=view.error, usage=view.usage, enqueued_at=view.enqueued_at,
                        started_at=view.started_at, finished_at=view.finished_at)
