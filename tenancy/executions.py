"""Executions: the orchestration API's view of a project's jobs, read from the same `executions` records that
`/v1/jobs` shows (same ids, same statuses), listed newest first with a cursor of (enqueued_at, id)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from core.errors import InvalidCursor, NotFound
from schemas.jobs import JobKind, JobStatus
from schemas.orchestration import ExecutionResult, ExecutionSummary, ExecutionView, Page
from tenancy import pages
from tenancy.jobs import as_utc
from tenancy.mongo import tenant_db

NEWEST_FIRST = [("enqueued_at", -1), ("_id", -1)]


def get(project_id: str, execution_id: str) -> ExecutionView:
    db = tenant_db(project_id)
    doc = db.executions.find_one({"_id": execution_id})
    if doc is None:
        raise _not_found(project_id, execution_id)
    result = None
    if doc["status"] == JobStatus.succeeded.value:
        found = db.results.find_one({"job_id": execution_id}, {"result": 1})
        result = found["result"] if found else None
    return ExecutionView(**_summary(project_id, doc).model_dump(), input_data=doc.get("payload"),
                         variables=doc.get("variables") or {}, result=result)


def result(project_id: str, execution_id: str) -> ExecutionResult:
    view = get(project_id, execution_id)
    return ExecutionResult(execution_id=view.execution_id, status=view.status, result=view.result, error=view.error,
                           usage=view.usage)


def page(project_id: str, *, limit: int, cursor: str | None = None, status: JobStatus | None = None,
         instance_id: str | None = None, kind: JobKind | None = None, since: datetime | None = None,
         until: datetime | None = None) -> Page[ExecutionSummary]:
    """A page of executions, newest first; `since` (inclusive) and `until` (exclusive) bound enqueued_at.

    The database is asked for a superset by time (`$gte`, `$lte`) and each document is checked exactly here:
    nx-27017 compares dates to the second, so an exact `$lt` there drops records of the same second."""
    query: dict[str, Any] = {}
    for name, value in (("status", status.value if status else None), ("instance_id", instance_id),
                        ("kind", kind.value if kind else None)):
        if value is not None:
            query[name] = value
    after: tuple[datetime, str] | None = None
    if cursor is not None:
        at_text, last_id = pages.decode(cursor, 2)
        after = (_cursor_time(at_text), last_id)
    since, until = (_utc(since) if since else None), (_utc(until) if until else None)
    uppers = [t for t in (until, after[0] if after else None) if t is not None]
    window = {op: t for op, t in (("$gte", since), ("$lte", min(uppers) if uppers else None)) if t is not None}
    if window:
        query["enqueued_at"] = window

    def wanted(doc: dict[str, Any]) -> bool:
        at = _utc(as_utc(doc["enqueued_at"]))
        return ((since is None or at >= since) and (until is None or at < until)
                and (after is None or (at, str(doc["_id"])) < after))

    docs: list[dict[str, Any]] = []
    found = tenant_db(project_id).executions.find(query, {"payload": 0}).sort(NEWEST_FIRST).batch_size(limit + 16)
    with found:
        for doc in found:
            if wanted(doc):
                docs.append(doc)
                if len(docs) > limit:
                    break
    next_cursor = None
    if len(docs) > limit:
        docs = docs[:limit]
        last = docs[-1]
        next_cursor = pages.encode(_utc(as_utc(last["enqueued_at"])).isoformat(), last["_id"])
    return Page(items=[_summary(project_id, d) for d in docs], next_cursor=next_cursor)


def _summary(project_id: str, doc: dict[str, Any]) -> ExecutionSummary:
    return ExecutionSummary(
        execution_id=str(doc["_id"]), project_id=project_id, instance_id=doc.get("instance_id"), kind=doc["kind"],
        status=doc["status"], priority=doc["priority"], usage=doc.get("usage"), error=doc.get("error"),
        enqueued_at=as_utc(doc["enqueued_at"]), started_at=as_utc(doc.get("started_at")),
        finished_at=as_utc(doc.get("finished_at")), attempts=doc.get("attempts", 0))


def _utc(value: datetime | None) -> datetime:
    assert value is not None
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def _cursor_time(text: str) -> datetime:
    try:
        return _utc(datetime.fromisoformat(text))
    except ValueError:
        raise InvalidCursor("The cursor is not one this list gave out; start again without it.") from None


def _not_found(project_id: str, execution_id: str) -> NotFound:
    return NotFound(f"No execution {execution_id!r} in project {project_id!r}.", entity="execution",
                    entity_id=execution_id)
