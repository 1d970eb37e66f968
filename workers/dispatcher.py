"""The admission dispatcher: a thread in every worker process that turns tenant queues into Celery messages.

Each round it admits jobs class by class for as long as the fleet has free slots; the admission script
itself writes each admitted job into its class's Celery queue, so admitting costs one round trip per batch
and no Python publishing. At most every `dispatch_interval_s` it also announces the worker's capacity, renews
the leases of the jobs it runs and reaps expired leases. It wakes as soon as a job is enqueued or finished (a
token in a Redis list) and at least every `dispatch_interval_s`. Every worker runs one; the Lua scripts make
their decisions atomic, so any number of dispatchers share the work.
"""

from __future__ import annotations

import contextlib
import json
import threading
import time
from typing import Any

import redis
from celery import bootsteps
from pydantic import ValidationError
from pymongo.errors import PyMongoError

from core.errors import BudgetExceeded, DatabaseUnavailable, TenantqError
from core.logs import get_logger
from core.redaction import redact_text
from core.settings import get_settings
from schemas.jobs import JobEnvelope, JobKind, PriorityClass
from schemas.usage import Usage
from tenancy import jobs
from tenancy.mongo import durable
from tenancy.queues import CeleryRoute, TenantQueues, get_queues
from workers import leases

TASK_OF_KIND = {kind: "tenantq.noop" if kind is JobKind.noop else "tenantq.run_job" for kind in JobKind}


def celery_route() -> CeleryRoute:
    """Unknown kinds go to run_job, whose envelope validation dead-letters them with the reason."""
    from workers.app import QUEUE_PREFIX  # workers.app imports this module: resolve it at run time

    return CeleryRoute(QUEUE_PREFIX, {k.value: task for k, task in TASK_OF_KIND.items()}, "tenantq.run_job")


class Dispatcher:
    def __init__(self, name: str, classes: list[PriorityClass], concurrency: int) -> None:
        self.name, self.classes, self.concurrency = name, classes, concurrency
        self.fleet = get_settings().fleet
        self.log = get_logger(worker=name)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._serve, name="tenantq-dispatcher", daemon=True)
        self._housekeeping_due = 0.0
        self.route = celery_route()

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=self.fleet.dispatch_interval_s * 4)
        with contextlib.suppress(redis.RedisError):
            get_queues().deregister_worker(self.name)

    def _serve(self) -> None:
        while not self._stop.is_set():
            try:
                self.round(get_queues())
                get_queues().wait_for_work(self.fleet.dispatch_interval_s)
            except Exception:  # the dispatcher's outermost boundary: log, pause, go on
                self.log.exception("dispatcher.round_failed")
                self._stop.wait(self.fleet.dispatch_interval_s)

    def round(self, queues: TenantQueues) -> int:
        """One admission round; returns how many jobs it admitted (and so published)."""
        fleet = self.fleet
        if time.monotonic() >= self._housekeeping_due:
            self._housekeeping_due = time.monotonic() + fleet.dispatch_interval_s
            self.housekeeping(queues)
        admitted = 0
        while True:  # one round trip admits for every class, interactive first
            admission = queues.admit(list(PriorityClass), lease_ttl_s=fleet.lease_ttl_s, batch=fleet.admit_batch,
                                     fleet_cap=fleet.fleet_max_in_flight, route=self.route)
            for rejected in admission.rejected:
                self.log.warning("job.rejected", job_id=rejected.job_id, reason=rejected.reason)
            admitted += len(admission.admitted)
            if len(admission.admitted) < fleet.admit_batch and not admission.rejected:
                return admitted

    def housekeeping(self, queues: TenantQueues) -> None:
        """Heartbeat (this worker's capacity), lease renewal of its running jobs, the reaper, and the jobs
        to fail that admission and the reaper listed."""
        fleet = self.fleet
        queues.register_worker(self.name, self.classes, self.concurrency, max(5.0, fleet.dispatch_interval_s * 6))
        queues.renew(leases.held(), fleet.lease_ttl_s)
        queues.reap(fleet.max_attempts)
        for entry in queues.failing():
            try:
                self._fail(queues, entry)
            except (DatabaseUnavailable, PyMongoError) as exc:  # MongoDB is away: the entry waits for it
                self.log.warning("dispatcher.fail_deferred", error=type(exc).__name__)
                return

    def _fail(self, queues: TenantQueues, entry: str) -> None:
        """Record the end of a job listed to fail, then settle its entry: once recorded, never lost."""
        try:
            item = json.loads(entry)
            env = JobEnvelope.model_validate_json(item["env"])
        except (ValueError, KeyError, TypeError, ValidationError) as exc:
            queues.dead_letter(f"a job to fail that cannot be read: {type(exc).__name__}", None, redact_text(entry))
            queues.settle(entry)
            return
        error = self._reason(env, str(item.get("reason")))
        if durable(lambda: jobs.fail(env.tenant_id, env.job_id, error), "failing a job", wait_s=0):
            self.log.warning("job.failed", tenant_id=env.tenant_id, job_id=env.job_id, code=error.code)
            queues.settle(entry)
            return
        # It had ended after all (its outcome recorded, its spend never charged): charge what it recorded.
        usage = durable(lambda: jobs.ended(env.tenant_id, env.job_id), "reading a job", wait_s=0).usage
        usage = usage or Usage(attempts=0)
        queues.settle(entry, usage.cost_usd, usage.total_tokens)

    def _reason(self, env: JobEnvelope, reason: str) -> TenantqError:
        if reason == "budget_exceeded":
            return BudgetExceeded(
                f"The job needs an estimated ${env.estimate_usd:.6f} ({env.estimate_tokens} tokens), more than "
                "is left of the tenant's monthly budget; it was not run. Raise the plan's budget or wait for "
                "the next month.", tenant_id=env.tenant_id, job_id=env.job_id)
        return TenantqError(
            f"The job's worker was lost {self.fleet.max_attempts} times; it was not retried again. Check worker "
            "logs for crashes or memory limits.", tenant_id=env.tenant_id, job_id=env.job_id)


class DispatcherStep(bootsteps.StartStopStep):
    """Starts the dispatcher with the worker (after its pool) and stops it, deregistering, on shutdown."""

    requires = {"celery.worker.components:Pool"}

    def __init__(self, worker: Any, **kwargs: Any) -> None:
        self.dispatcher: Dispatcher | None = None

    def start(self, worker: Any) -> None:
        consumed = worker.app.amqp.queues.consume_from or worker.app.amqp.queues
        classes = [PriorityClass(name.removeprefix("tenantq.")) for name in consumed
                   if name.startswith("tenantq.") and name.removeprefix("tenantq.") in PriorityClass.__members__]
        self.dispatcher = Dispatcher(worker.hostname, classes, worker.concurrency)
        self.dispatcher.start()

    def stop(self, worker: Any) -> None:
        if self.dispatcher is not None:
            self.dispatcher.stop()
