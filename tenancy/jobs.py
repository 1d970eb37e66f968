"""Job records in each tenant's own database: executions, results, token usage and the audit trail.

A job's record is written before its message is queued, so a client can poll it at once and an
idempotency key (a unique index) decides duplicates even between concurrent producers. Every write here is
keyed by the job, so a retried or repeated write (a redelivery, MongoDB coming back) writes nothing twice.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from pymongo.errors import DuplicateKeyError

from core.errors import JobNotFound, TenantqError
from schemas.jobs import AuditEvent, JobEnvelope, JobOutcome, JobStatus, JobView
from schemas.usage import Usage
from tenancy.mongo import Write, tenant_db, write_grouped


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
        "instance_id": envelope.instance_id, "variables": envelope.variables,
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


@dataclass(frozen=True)
class Ended:
    """A job that had already ended when a delivery of it began: that delivery runs nothing."""

    status: JobStatus | None
    """None: the job has no record (it was deleted)."""
    usage: Usage | None


def start(tenant_id: str, job_id: str, attempt: int) -> Ended | None:
    """Mark a job running and record this attempt's start in its audit trail at once, so an attempt cut
    short by a killed worker still leaves its trace. Returns None, or how the job ended when it had already
    (a delivery after the outcome was recorded must not run it again)."""
    db = tenant_db(tenant_id)
    running = db.executions.update_one(
        {"_id": job_id, "status": {"$in": [JobStatus.queued.value, JobStatus.running.value]}},
        {"$set": {"status": JobStatus.running.value, "started_at": now(), "attempts": attempt}},
    )
    if running.matched_count == 0:
        return ended(tenant_id, job_id)
    started = AuditEvent(event="started", at=now(), data={"attempt": attempt})
    write_grouped(db, [_keyed("audit_log", _event_doc(job_id, attempt, "start", started))])
    return None


def ended(tenant_id: str, job_id: str) -> Ended:
    """How a job that is no longer queued or running ended, with the usage it recorded."""
    doc = tenant_db(tenant_id).executions.find_one({"_id": job_id}, {"status": 1, "usage": 1})
    if doc is None:
        return Ended(None, None)
    usage = doc.get("usage")
    return Ended(JobStatus(str(doc["status"])), Usage.model_validate(usage) if usage else None)


@dataclass
class Trail:
    """The audit events of one run, each stamped when it happened; they are recorded with the run's outcome."""

    events: list[AuditEvent] = field(default_factory=list)

    def add(self, event: str, **data: Any) -> None:
        self.events.append(AuditEvent(event=event, at=now(), data=data))


def record(tenant_id: str, job_id: str, kind: str, outcome: JobOutcome, instance_id: str | None = None) -> None:
    """Record how a run ended: its result, one usage document per model call, its audit trail and, last, the
    job's status, which says succeeded or failed only once everything else is there.

    Every write is keyed by the job (usage by call, events by attempt and step), so recording the same
    outcome again, after a cut or a redelivery, writes nothing twice. Concurrent jobs of the tenant share
    the round trips (`write_grouped`)."""
    finished = now()
    total = sum(outcome.usage, Usage(attempts=0))
    changes: dict[str, Any] = {"status": outcome.status.value, "finished_at": finished,
                               "finished_attempt": outcome.attempt}
    if outcome.usage or outcome.status is JobStatus.succeeded:
        changes["usage"] = total.model_dump()
    if outcome.error is not None:
        changes["error"] = outcome.error
    final = AuditEvent(event=outcome.status.value, at=finished, data={
        "attempt": outcome.attempt, "total_tokens": total.total_tokens, "cost_usd": total.cost_usd,
        **({"code": outcome.error.get("code")} if outcome.error else {})})
    writes: list[Write] = []
    if outcome.status is JobStatus.succeeded:
        writes.append(Write("results", "replace", {"job_id": job_id, "kind": kind, "result": outcome.result,
                                                   "attempt": outcome.attempt, "created_at": finished},
                            filter={"job_id": job_id}, upsert=True))
    writes += [_keyed("token_usage", {"_id": f"{job_id}:{n}", "job_id": job_id, "kind": kind,
                                      "instance_id": instance_id, "attempt": outcome.attempt,
                                      "created_at": finished, **u.model_dump()})
               for n, u in enumerate(outcome.usage)]
    writes += [_keyed("audit_log", _event_doc(job_id, outcome.attempt, n, event))
               for n, event in enumerate([*outcome.events, final])]
    writes.append(Write("executions", "update", {"$set": changes}, filter={"_id": job_id}))
    write_grouped(tenant_db(tenant_id), writes)


def fail(tenant_id: str, job_id: str, error: TenantqError) -> bool:
    """Fail a job that has not ended (outside a run: refused, undeliverable, out of attempts); False when it
    had ended already, which it keeps."""
    db = tenant_db(tenant_id)
    failed = db.executions.update_one(
        {"_id": job_id, "status": {"$in": [JobStatus.queued.value, JobStatus.running.value]}},
        {"$set": {"status": JobStatus.failed.value, "finished_at": now(), "error": error.to_record()}},
    )
    if failed.matched_count:
        _upsert(db.audit_log, _event_doc(job_id, 0, "failed", AuditEvent(event="failed", at=now(),
                                                                          data={"code": error.code})))
    return bool(failed.matched_count)


def audit(tenant_id: str, job_id: str, event: str, **data: Any) -> None:
    """Write one audit event now (outside a run; inside one, events go into its `Trail`)."""
    doc = _event_doc(job_id, 0, event, AuditEvent(event=event, at=now(), data=data))
    _upsert(tenant_db(tenant_id).audit_log, doc)


def _event_doc(job_id: str, attempt: int, step: int | str, event: AuditEvent) -> dict[str, Any]:
    return {"_id": f"{job_id}:{attempt}:{step}", "job_id": job_id, **event.model_dump()}


def _keyed(collection: str, doc: dict[str, Any]) -> Write:
    """A write of `doc` by its _id: the first one inserts it, a repeat replaces it with itself."""
    return Write(collection, "replace", doc, filter={"_id": doc["_id"]}, upsert=True)


def _upsert(collection: Any, doc: dict[str, Any]) -> None:
    collection.replace_one({"_id": doc["_id"]}, doc, upsert=True)


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
        attempts=doc.get("attempts", 0), instance_id=doc.get("instance_id"),
    )
