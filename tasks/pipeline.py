"""The pipeline every job runs through: load the agent, validate the payload, run the kind, say how it ended.

A run records nothing itself: it returns the job's outcome (result or readable error, usage of every model
call, audit trail), which the worker keeps beside the job's lease and then records, so that what a run paid
for is recorded once whatever fails around it. What a wait can fix is raised instead of failing the job:
every model down (a transient provider error, while the job is within its deadline) and MongoDB unreachable.
"""

from __future__ import annotations

from typing import Any

from pydantic import ValidationError
from pymongo.errors import PyMongoError

from core.errors import DatabaseUnavailable, InvalidJob, TenantqError
from core.logs import get_logger
from schemas.jobs import JobEnvelope, JobOutcome, JobStatus
from tasks.context import JobContext
from tasks.kinds import kind_of
from tenancy import jobs
from tenancy.mongo import durable, unreachable
from tenancy.registry import agent_config


def run(envelope: JobEnvelope, attempt: int, *, may_wait: bool = True) -> JobOutcome:
    """Run one delivery of a job. With `may_wait`, a job whose every model is down raises the provider's
    transient error (the job goes back to its queue); without it, the job fails with that reason."""
    log = get_logger(tenant_id=envelope.tenant_id, job_id=envelope.job_id, kind=envelope.kind.value)
    trail = jobs.Trail()
    ctx: JobContext | None = None
    try:
        kind = kind_of(envelope.kind)
        payload = kind.payload.model_validate(envelope.payload)
        agent = durable(lambda: agent_config(envelope.tenant_id, envelope.instance_id), "loading the agent")
        ctx = JobContext(envelope, agent, log, trail=trail)
        result = kind.handle(ctx, payload)
    except ValidationError as exc:
        where = "; ".join(f"{'.'.join(map(str, e['loc'])) or 'payload'}: {e['msg']}" for e in exc.errors())
        error: TenantqError = InvalidJob(f"Payload is invalid ({where}); fix it and submit again.")
        return _failed(attempt, error, ctx, trail, log)
    except TenantqError as exc:
        if exc.transient and (may_wait or isinstance(exc, DatabaseUnavailable)):
            raise
        return _failed(attempt, exc, ctx, trail, log)
    except PyMongoError as exc:
        if unreachable(exc):
            raise DatabaseUnavailable("MongoDB became unreachable while the job ran; it goes on later.") from exc
        raise
    usage = ctx.usage
    log.info("job.succeeded", tokens=sum(u.total_tokens for u in usage), attempt=attempt)
    return JobOutcome(status=JobStatus.succeeded, attempt=attempt, result=result, usage=usage,
                      events=trail.events)


def crashed(attempt: int, exc: BaseException) -> JobOutcome:
    """The outcome of a run that raised what no handler expects (a bug): failed, with the type named."""
    error = TenantqError(f"Internal error while running the job: {type(exc).__name__}. It was logged.")
    return JobOutcome(status=JobStatus.failed, attempt=attempt, error=error.to_record())


def _failed(attempt: int, error: TenantqError, ctx: JobContext | None,
            trail: jobs.Trail, log: Any) -> JobOutcome:
    log.warning("job.failed", code=error.code, error=error.message)
    return JobOutcome(status=JobStatus.failed, attempt=attempt, error=error.to_record(),
                      usage=ctx.usage if ctx else [], events=trail.events)
