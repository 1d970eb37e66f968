"""The Celery tasks. Their lease and logging hooks sit in one place: the `TenantJob` base class."""

from __future__ import annotations

import contextlib
import json
import time
from typing import Any

import structlog
from celery import Task
from pydantic import ValidationError

from schemas.jobs import JobEnvelope
from tasks.pipeline import Outcome, run
from tenancy import jobs
from tenancy.queues import get_queues
from tenantq.errors import InvalidJob, TenantqError
from tenantq.logs import get_logger, redact
from tenantq.settings import get_settings
from workers import leases
from workers.app import app


class TenantJob(Task):
    """Every delivery: decode the envelope, claim its lease (a stale delivery is dropped), keep the lease
    renewed while it runs, and give the slot back with the real spend when it ends, whatever happens."""

    acks_late = True
    typing = False

    def __call__(self, envelope: Any, attempt: int = 1) -> dict[str, Any]:
        try:
            env = JobEnvelope.model_validate(envelope)
        except ValidationError as exc:
            return _malformed(envelope, attempt, exc)
        queues = get_queues()
        ttl = get_settings().fleet.lease_ttl_s
        log = get_logger(tenant_id=env.tenant_id, job_id=env.job_id, kind=env.kind.value)
        if not queues.claim(env.job_id, attempt, ttl):
            log.info("job.stale_delivery", attempt=attempt)
            return {"status": "stale"}
        leases.hold(env.job_id)
        structlog.contextvars.bind_contextvars(tenant_id=env.tenant_id, job_id=env.job_id, kind=env.kind.value)
        outcome = Outcome(None)
        try:
            outcome = self.run(env, attempt)
        except Exception as exc:  # the outermost worker boundary: record, log with context, keep serving
            log.exception("job.crashed")
            error = TenantqError(f"Internal error while running the job: {type(exc).__name__}. It was logged.")
            jobs.fail(env.tenant_id, env.job_id, error)
        finally:
            leases.drop(env.job_id)
            queues.finish(env.job_id, attempt, outcome.cost_usd, outcome.total_tokens)
            structlog.contextvars.clear_contextvars()
        return {"status": outcome.status.value if outcome.status else "skipped", "tokens": outcome.total_tokens}


def _malformed(envelope: Any, attempt: int, exc: ValidationError) -> dict[str, Any]:
    """A message that is not a job: fail its record when it names one, dead-letter it, keep serving.

    The reason names the fields at fault, never their values: it reaches the job record, which the tenant
    reads. The message itself goes only where operators look, redacted like a log line (secret-named keys
    and e-mail addresses masked): whole into the dead letter, to be reprocessed, and an excerpt into the log."""
    fields = envelope if isinstance(envelope, dict) else {}
    job_id, tenant_id = fields.get("job_id"), fields.get("tenant_id")
    reason = f"malformed job message: {exc.errors(include_url=False, include_input=False, include_context=False)}"
    queues = get_queues()
    message = json.dumps(redact(envelope), default=str)[:10_000]
    queues.dead_letter(reason, tenant_id if isinstance(tenant_id, str) else None, message)
    if isinstance(job_id, str):
        queues.finish(job_id, attempt, 0, 0)
        if isinstance(tenant_id, str):
            with contextlib.suppress(TenantqError):
                jobs.fail(tenant_id, job_id, InvalidJob(reason))
    get_logger(job_id=job_id).warning("job.malformed", reason=reason[:500], message=message[:500])
    return {"status": "failed", "error": reason}


@app.task(name="tenantq.run_job", base=TenantJob, bind=True)
def run_job(self: TenantJob, envelope: JobEnvelope, attempt: int) -> Outcome:
    return run(envelope, attempt)


@app.task(name="tenantq.noop", base=TenantJob, bind=True)
def noop(self: TenantJob, envelope: JobEnvelope, attempt: int) -> Outcome:
    """No-op jobs for the benchmarks and the queue tests: optional sleep, no database. With `record_to`
    (a Redis list), each run appends its timings there, because a no-op job has no record to poll."""
    started = time.time()
    time.sleep(float(envelope.payload.get("sleep_ms", 0)) / 1000)
    record_to = envelope.payload.get("record_to")
    if isinstance(record_to, str):
        get_queues().r.rpush(record_to, json.dumps({
            "job_id": envelope.job_id, "tenant_id": envelope.tenant_id, "attempt": attempt,
            "enqueued_at": envelope.enqueued_at.timestamp(), "started_at": started, "finished_at": time.time(),
            "worker": self.request.hostname,
        }))
    return Outcome(None)
