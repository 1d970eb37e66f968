"""A project's executions, newest first, a page at a time (the deprecated dynamic routes list them)."""

from __future__ import annotations

from typing import Any

from core.errors import JobNotFound
from schemas.executions import ExecutionPage, ExecutionSummary
from schemas.jobs import JobStatus
from tenancy.dated_pages import newest_first
from tenancy.jobs import as_utc
from tenancy.mongo import tenant_db

FIELDS = ("kind", "status", "priority", "instance_id", "usage", "error", "enqueued_at", "started_at",
          "finished_at")


def page(project_id: str, *, status: JobStatus | None = None, limit: int = 50,
         cursor: str | None = None) -> ExecutionPage:
    conditions: list[dict[str, Any]] = [{"status": status.value}] if status else []
    docs, next_cursor = newest_first(tenant_db(project_id).executions, "enqueued_at", conditions, limit, cursor,
                                     projection=dict.fromkeys(FIELDS, 1))
    return ExecutionPage(executions=[summary(doc) for doc in docs], next_cursor=next_cursor)


def one(project_id: str, execution_id: str) -> ExecutionSummary:
    """One execution; JobNotFound for an unknown id or another project's."""
    doc = tenant_db(project_id).executions.find_one({"_id": execution_id}, dict.fromkeys(FIELDS, 1))
    if doc is None:
        raise JobNotFound(f"No execution {execution_id!r} in this project.", tenant_id=project_id,
                          job_id=execution_id)
    return summary(doc)


def summary(doc: dict[str, Any]) -> ExecutionSummary:
    return ExecutionSummary(
        execution_id=str(doc["_id"]), kind=doc["kind"], status=doc["status"], priority=doc["priority"],
        instance_id=doc.get("instance_id"), usage=doc.get("usage"), error=doc.get("error"),
        enqueued_at=as_utc(doc["enqueued_at"]), started_at=as_utc(doc.get("started_at")),
        finished_at=as_utc(doc.get("finished_at")))
