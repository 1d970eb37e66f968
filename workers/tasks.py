"""The Celery tasks. Their lease and logging hooks sit in one place: the `TenantJob` base class."""

from __future__ import annotations

import contextlib
import json
import random
import time
from collections.abc import Callable
from typing import Any, TypeVar

import redis
import structlog
from celery import Task
from pydantic import ValidationError
from tenacity import Retrying, retry_if_exception_type, stop_after_delay, wait_random_exponential

from core.errors import InvalidJob, TenantqError
from core.logs import get_logger, redact
from core.settings import get_settings
from schemas.jobs import JobEnvelope, JobOutcome
from schemas.usage import Usage
from tasks import pipeline
from tenancy import events, jobs
from tenancy.mongo import durable
from tenancy.queues import get_queues
from workers import leases
from workers.app import app

T = TypeVar("T")


class TenantJob(Task):
    """Every delivery of a job, as steps that each complete or hand the job back; nothing is released before
    what it protects is recorded:

    1. claim the lease (a stale delivery, whose lease was handed on, is dropped); the dispatcher renews it;
    2. start: the job is marked running and the attempt's start audited, durably (MongoDB down: wait);
       a job that had ended already is only finished, its recorded spend charged if it never was;
    3. run, unless an earlier delivery's outcome was kept; keep the outcome beside the lease in Redis;
    4. record the outcome (idempotent writes, waiting out a MongoDB outage);
    5. finish: slot, reservation and spend, once, with the kept outcome dropped.
    A job whose every model is down, or that cannot reach MongoDB for `MONGODB_OUTAGE_WAIT_S`, goes back to
    its queue with a delay; its kept outcome stays. Tasks with `records = False` (the no-op) skip 2 to 4.
    """

    acks_late = True
    typing = False
    records = True

    def __call__(self, envelope: Any, attempt: int = 1) -> dict[str, Any]:
        try:
            env = JobEnvelope.model_validate(envelope)
        except ValidationError as exc:
            return _malformed(envelope, attempt, exc)
        queues = get_queues()
        log = get_logger(tenant_id=env.tenant_id, job_id=env.job_id, kind=env.kind.value, attempt=attempt)
        claim = queues.claim(env.job_id, attempt, get_settings().fleet.lease_ttl_s)
        if claim is None:
            log.info("job.stale_delivery")
            return {"status": "stale"}
        leases.hold(env.job_id)
        structlog.contextvars.bind_contextvars(tenant_id=env.tenant_id, job_id=env.job_id, kind=env.kind.value)
        try:
            if not self.records:
                self.run(env, attempt)
                _until_redis_answers(lambda: queues.finish(env.job_id, attempt, 0, 0))
                return {"status": "succeeded"}
            return self._deliver(env, attempt, claim.kept, log)
        except TenantqError as exc:
            if not exc.transient:
                raise  # a bug: the lease expires and the job is delivered again, up to TENANTQ_MAX_ATTEMPTS
            delay = _hand_back_delay(attempt)
            log.warning("job.handed_back", code=exc.code, reason=exc.message, delay_s=round(delay, 1))
            _until_redis_answers(lambda: queues.hand_back(env.job_id, attempt, delay))
            return {"status": "handed_back", "code": exc.code}
        finally:
            leases.drop(env.job_id)
            structlog.contextvars.clear_contextvars()

    def _deliver(self, env: JobEnvelope, attempt: int, kept: str | None, log: Any) -> dict[str, Any]:
        queues = get_queues()
        ended = durable(lambda: jobs.start(env.tenant_id, env.job_id, attempt), "starting the job")
        if ended is not None:
            usage = ended.usage or Usage(attempts=0)
            log.info("job.already_ended", status=ended.status)
            _until_redis_answers(lambda: queues.finish(env.job_id, attempt, usage.cost_usd, usage.total_tokens))
            return {"status": "already_ended"}
        outcome = JobOutcome.model_validate_json(kept) if kept else self._run_and_keep(env, attempt, log)
        durable(lambda: jobs.record(env.tenant_id, env.job_id, env.kind.value, outcome, env.instance_id),
                "recording the outcome")
        final = json.dumps(events.event(
            env.job_id, outcome.status.value, outcome.status.value, result=outcome.result, error=outcome.error,
            total_tokens=outcome.total_tokens, cost_usd=outcome.cost_usd), default=str)
        _until_redis_answers(lambda: queues.finish(env.job_id, attempt, outcome.cost_usd, outcome.total_tokens,
                                                   final))
        return {"status": outcome.status.value, "tokens": outcome.total_tokens}

    def _run_and_keep(self, env: JobEnvelope, attempt: int, log: Any) -> JobOutcome:
        may_wait = time.time() < env.enqueued_at.timestamp() + get_settings().fleet.job_deadline_s
        try:
            outcome: JobOutcome = self.run(env, attempt, may_wait)
        except TenantqError:
            raise
        except Exception as exc:  # the outermost worker boundary: record, log with context, keep serving
            log.exception("job.crashed")
            outcome = pipeline.crashed(attempt, exc)
        try:
            _until_redis_answers(lambda: get_queues().keep(env.job_id, outcome.model_dump_json()))
        except redis.RedisError:
            log.warning("job.outcome_not_kept")  # recorded next all the same; only a kill now repeats the run
        return outcome


def _hand_back_delay(attempt: int) -> float:
    """Doubling from 1 s with the delivery number, with full jitter, at most TENANTQ_HANDBACK_DELAY_MAX_S."""
    return random.uniform(0.5, 1.0) * min(get_settings().fleet.handback_delay_max_s, 2.0 ** min(attempt - 1, 16))


def _until_redis_answers(step: Callable[[], T]) -> T:
    """Run a Redis step of a job's life, retrying with backoff while Redis is unreachable, for as long as the
    job's lease lasts: past that, the lease has expired and the reaper has handed the job on, so the next
    delivery takes over (and finds what this one recorded)."""
    with contextlib.suppress(redis.ConnectionError, redis.TimeoutError):
        return step()  # the common case, without building a retry loop on every job's path
    for attempt in Retrying(stop=stop_after_delay(get_settings().fleet.lease_ttl_s),
                            wait=wait_random_exponential(multiplier=0.1, max=2),
                            retry=retry_if_exception_type((redis.ConnectionError, redis.TimeoutError)),
                            reraise=True):
        with attempt:
            return step()
    raise AssertionError("tenacity returned without an outcome")  # pragma: no cover


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
def run_job(self: TenantJob, envelope: JobEnvelope, attempt: int, may_wait: bool = True) -> JobOutcome:
    return pipeline.run(envelope, attempt, may_wait=may_wait)


@app.task(name="tenantq.noop", base=TenantJob, bind=True, records=False)
def noop(self: TenantJob, envelope: JobEnvelope, attempt: int) -> None:
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
