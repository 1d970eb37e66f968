"""The pipeline every job runs through: claim the record, load the agent, run the kind, record the outcome.

Whatever a job meets, its record ends succeeded or failed with a readable error, in its tenant's database
and no other; the worker goes on serving.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from pydantic import ValidationError

from schemas.jobs import JobEnvelope, JobStatus
from schemas.usage import Usage
from tasks.context import JobContext
from tasks.kinds import kind_of
from tenancy import jobs
from tenancy.registry import agent_config
from tenantq.errors import InvalidJob, TenantqError
from tenantq.logs import get_logger


@dataclass
class Outcome:
    status: JobStatus | None
    usage: list[Usage] = field(default_factory=list)

    @property
    def cost_usd(self) -> float:
        return sum(u.cost_usd for u in self.usage)

    @property
    def total_tokens(self) -> int:
        return sum(u.total_tokens for u in self.usage)


def run(envelope: JobEnvelope, attempt: int) -> Outcome:
    """Run one delivery of a job; status None means the job had already ended and was not run again."""
    log = get_logger(tenant_id=envelope.tenant_id, job_id=envelope.job_id, kind=envelope.kind.value)
    if not jobs.start(envelope.tenant_id, envelope.job_id, attempt):
        log.info("job.skipped", reason="already finished")
        return Outcome(None)
    trail = jobs.Trail(envelope.tenant_id, envelope.job_id)
    trail.add("started", attempt=attempt)
    try:
        return _run(envelope, attempt, trail, log)
    finally:
        trail.flush()  # a run cut short by a crash still leaves what it did in the audit trail


def _run(envelope: JobEnvelope, attempt: int, trail: jobs.Trail, log: Any) -> Outcome:
    ctx: JobContext | None = None
    try:
        kind = kind_of(envelope.kind)
        payload = kind.payload.model_validate(envelope.payload)
        ctx = JobContext(envelope, agent_config(envelope.tenant_id), log, trail=trail)
        result = kind.handle(ctx, payload)
    except ValidationError as exc:
        where = "; ".join(f"{'.'.join(map(str, e['loc'])) or 'payload'}: {e['msg']}" for e in exc.errors())
        return _failed(envelope, InvalidJob(f"Payload is invalid ({where}); fix it and submit again."), ctx, trail)
    except TenantqError as exc:
        return _failed(envelope, exc, ctx, trail)
    jobs.succeed(envelope.tenant_id, envelope.job_id, envelope.kind.value, result, ctx.usage, trail)
    log.info("job.succeeded", tokens=sum(u.total_tokens for u in ctx.usage), attempt=attempt)
    return Outcome(JobStatus.succeeded, ctx.usage)


def _failed(envelope: JobEnvelope, error: TenantqError, ctx: JobContext | None, trail: jobs.Trail) -> Outcome:
    usage = ctx.usage if ctx else []
    jobs.fail(envelope.tenant_id, envelope.job_id, error, usage, trail)
    get_logger(tenant_id=envelope.tenant_id, job_id=envelope.job_id).warning(
        "job.failed", code=error.code, error=error.message
    )
    return Outcome(JobStatus.failed, usage)
