"""Job records in each tenant's own database: executions, results, token usage and the audit trail.

A job's record is written before its message is queued, so a client can poll it at once and an
idempotency key (a unique index) decides duplicates even between concurrent producers.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from pymongo.errors import DuplicateKeyError

from schemas.jobs import JobEnvelope, JobStatus, JobView
from schemas.usage import Usage
from tenancy.mongo import Write, tenant_db, write_grouped
from tenantq.errors import JobNotFound, TenantqError


def now() -> datetime:
    return datetime.now(UTC)


def as_utc(value: object) -> datetime | None:
    """A stored timestamp as an aware UTC datetime. Servers differ: nx-27017 returns a date written by
    `$set` as a naive ISO string, which would otherwise reach clients as a time without a zone."""
    if value is None:
        return None
    if isinstance(value, str):
        value = datetime.fromisoformat(value)
    if not isinstance(value, datetime):
        raise TypeError(f"not a timestamp: {value!r}")
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def create(envelope: JobEnvelope, idempotency_key: str | None) -> str | None:
    """Record a queued job; returns None, or the id of the earlier job with the same idempotency key."""
    doc: dict[str, Any] = {
        "_id": envelope.job_id, "kind": envelope.kind.value, "priority": envelope.priority.value,
        "status": JobStatus.queued.value, "payload": envelope.payload, "enqueued_at": envelope.enqueued_at,
        "attempts": 0, "estimate_tokens": envelope.estimate_tokens, "estimate_usd": envelope.estimate_usd,
    }
    if idempotency_key is not None:
        doc["idempotency_key"] = idempotency_key
    db = tenant_db(envelope.tenant_id)
    try:
        db.executions.insert_one(doc)
    except DuplicateKeyError:
        earlier = db.executions.find_one({"idempotency_key": idempotency_key}, {"_id": 1})
        if earlier is None:  # the earlier job was deleted between the two calls: a true conflict
            raise
        return str(earlier["_id"])
    audit(envelope.tenant_id, envelope.job_id, "queued", priority=envelope.priority.value)
    return None


def start(tenant_id: str, job_id: str, attempt: int) -> bool:
    """Mark a job running; False when it already ended (a duplicate delivery must not run it again).
    The "started" event goes into the run's `Trail`."""
    result = tenant_db(tenant_id).executions.update_one(
        {"_id": job_id, "status": {"$in": [JobStatus.queued.value, JobStatus.running.value]}},
        {"$set": {"status": JobStatus.running.value, "started_at": now(), "attempts": attempt}},
    )
    return result.matched_count == 1


@dataclass
class Trail:
    """The audit events of one run, each stamped when it happened, written in one round trip when the run
    ends (with its final event) or stops: a job costs one audit write, not one per step."""

    tenant_id: str
    job_id: str
    events: list[dict[str, Any]] = field(default_factory=list)

    def add(self, event: str, **data: Any) -> None:
        self.events.append(_event(self.job_id, event, **data))

    def flush(self, *final: dict[str, Any]) -> None:
        events = self.take(*final)
        if events:
            tenant_db(self.tenant_id).audit_log.insert_many(events)

    def take(self, *final: dict[str, Any]) -> list[dict[str, Any]]:
        """The events so far and `final`, for a caller that writes them; the trail is then empty."""
        events, self.events = [*self.events, *final], []
        return events


def succeed(tenant_id: str, job_id: str, kind: str, result: dict[str, Any], usage: list[Usage],
            trail: Trail | None = None) -> None:
    """Record a job's result, usage, end and audit trail, in that order; the record says succeeded only once
    the result is there. Concurrent jobs of the tenant share the round trips (`write_grouped`)."""
    finished = now()
    total = sum(usage, Usage(attempts=0)) if usage else Usage(attempts=0)
    write_grouped(tenant_db(tenant_id), [
        Write("results", "replace", {"job_id": job_id, "kind": kind, "result": result, "created_at": finished},
              filter={"job_id": job_id}, upsert=True),
        *(Write("token_usage", "insert", {"job_id": job_id, "kind": kind, "created_at": finished, **u.model_dump()})
          for u in usage),
        Write("executions", "update", {"$set": {
            "status": JobStatus.succeeded.value, "finished_at": finished, "usage": total.model_dump(),
        }}, filter={"_id": job_id}),
        *_audit(trail, tenant_id, job_id,
                _event(job_id, "succeeded", total_tokens=total.total_tokens, cost_usd=total.cost_usd)),
    ])


def fail(tenant_id: str, job_id: str, error: TenantqError, usage: list[Usage] | None = None,
         trail: Trail | None = None) -> None:
    finished = now()
    changes: dict[str, Any] = {"status": JobStatus.failed.value, "finished_at": finished, "error": error.to_dict()}
    if usage:
        changes["usage"] = sum(usage, Usage(attempts=0)).model_dump()
    write_grouped(tenant_db(tenant_id), [
        *(Write("token_usage", "insert", {"job_id": job_id, "created_at": finished, **u.model_dump()})
          for u in usage or []),
        Write("executions", "update", {"$set": changes}, filter={"_id": job_id}),
        *_audit(trail, tenant_id, job_id, _event(job_id, "failed", code=error.code)),
    ])


def _audit(trail: Trail | None, tenant_id: str, job_id: str, final: dict[str, Any]) -> list[Write]:
    return [Write("audit_log", "insert", event) for event in (trail or Trail(tenant_id, job_id)).take(final)]


def audit(tenant_id: str, job_id: str, event: str, **data: Any) -> None:
    """Write one audit event now (outside a run; inside one, events go into its `Trail`)."""
    tenant_db(tenant_id).audit_log.insert_one(_event(job_id, event, **data))


def _event(job_id: str, event: str, **data: Any) -> dict[str, Any]:
    return {"job_id": job_id, "event": event, "at": now(), "data": data}


def view(tenant_id: str, job_id: str) -> JobView:
    """A job as its tenant sees it; another tenant's job id is simply not found."""
    db = tenant_db(tenant_id)
    doc = db.executions.find_one({"_id": job_id}, {"payload": 0})
    if doc is None:
        raise JobNotFound(f"No job {job_id!r} for this tenant.", tenant_id=tenant_id, job_id=job_id)
    result = None
    if doc["status"] == JobStatus.succeeded.value:
        found = db.results.find_one({"job_id": job_id}, {"result": 1})
        result = found["result"] if found else None
    return JobView(
        job_id=job_id, tenant_id=tenant_id, kind=doc["kind"], status=doc["status"], priority=doc["priority"],
        result=result, usage=doc.get("usage"), error=doc.get("error"), enqueued_at=as_utc(doc["enqueued_at"]),
        started_at=as_utc(doc.get("started_at")), finished_at=as_utc(doc.get("finished_at")),
        attempts=doc.get("attempts", 0),
    )
