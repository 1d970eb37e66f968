"""The admission dispatcher: a thread in every worker process that turns tenant queues into Celery messages.

Each round it announces the worker's capacity, renews the leases of the jobs it runs, reaps expired
leases, and admits jobs class by class for as long as the fleet has free slots. It wakes as soon as a job
is enqueued or finished (a token in a Redis list) and at least every `dispatch_interval_s`. Every worker
runs one; the Lua scripts make their decisions atomic, so any number of dispatchers share the work.
"""

from __future__ import annotations

import json
import threading
from typing import Any

import redis
from celery import Celery, bootsteps
from pydantic import ValidationError

from schemas.jobs import JobEnvelope, JobKind, PriorityClass
from tenancy import jobs
from tenancy.queues import Admitted, TenantQueues, get_queues
from tenantq.errors import BudgetExceeded, TenantqError
from tenantq.logs import get_logger
from tenantq.settings import get_settings
from workers import leases

TASK_OF_KIND = {kind: "tenantq.noop" if kind is JobKind.noop else "tenantq.run_job" for kind in JobKind}


class Dispatcher:
    def __init__(self, app: Celery, name: str, classes: list[PriorityClass], concurrency: int) -> None:
        self.app, self.name, self.classes, self.concurrency = app, name, classes, concurrency
        self.fleet = get_settings().fleet
        self.log = get_logger(worker=name)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._serve, name="tenantq-dispatcher", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=self.fleet.dispatch_interval_s * 4)
        try:
            get_queues().deregister_worker(self.name)
        except redis.RedisError:
            pass

    def _serve(self) -> None:
        while not self._stop.is_set():
            try:
                self.round(get_queues())
                get_queues().wait_for_work(self.fleet.dispatch_interval_s)
            except Exception:  # the dispatcher's outermost boundary: log, pause, go on
                self.log.exception("dispatcher.round_failed")
                self._stop.wait(self.fleet.dispatch_interval_s)

    def round(self, queues: TenantQueues) -> int:
        fleet = self.fleet
        queues.register_worker(self.name, self.classes, self.concurrency, max(5.0, fleet.dispatch_interval_s * 6))
        queues.renew(leases.held(), fleet.lease_ttl_s)
        reaped = queues.reap(fleet.max_attempts)
        for raw in reaped.exhausted:
            self._fail_exhausted(raw)
        published = 0
        for priority in PriorityClass:
            while True:
                admission = queues.admit(priority, lease_ttl_s=fleet.lease_ttl_s, batch=fleet.admit_batch,
                                         fleet_cap=fleet.fleet_max_in_flight)
                for rejected in admission.rejected:
                    self._reject(rejected.envelope, rejected.reason)
                published += self._publish(queues, priority, admission.admitted)
                if len(admission.admitted) < fleet.admit_batch:
                    break
        return published

    def _publish(self, queues: TenantQueues, priority: PriorityClass, admitted: list[Admitted]) -> int:
        if not admitted:
            return 0
        queue = "tenantq." + priority.value
        with self.app.producer_or_acquire() as producer:
            for job in admitted:
                try:
                    envelope: dict[str, Any] = json.loads(job.envelope)
                    kind = JobKind(envelope["kind"])
                except (ValueError, KeyError, TypeError) as exc:
                    queues.dead_letter(f"undecodable envelope: {exc}", None, job.envelope)
                    queues.finish(job.job_id, job.attempt, 0, 0)
                    continue
                self.app.send_task(TASK_OF_KIND[kind], args=[envelope, job.attempt], queue=queue,
                                   task_id=job.job_id, producer=producer)
        return len(admitted)

    def _reject(self, raw: str, reason: str) -> None:
        try:
            env = JobEnvelope.model_validate_json(raw)
        except ValidationError:
            get_queues().dead_letter(f"rejected ({reason}) and undecodable", None, raw)
            return
        error = BudgetExceeded(
            "The tenant's monthly budget is spent; the job was not run. Raise the plan's budget or wait for "
            "the next month.", tenant_id=env.tenant_id, job_id=env.job_id)
        jobs.fail(env.tenant_id, env.job_id, error)
        self.log.warning("job.rejected", tenant_id=env.tenant_id, job_id=env.job_id, reason=reason)

    def _fail_exhausted(self, raw: str) -> None:
        try:
            env = JobEnvelope.model_validate_json(raw)
            jobs.fail(env.tenant_id, env.job_id, TenantqError(
                f"The job's worker was lost {self.fleet.max_attempts} times; it was not retried again. "
                "Check worker logs for crashes or memory limits.", tenant_id=env.tenant_id, job_id=env.job_id))
        except (ValidationError, TenantqError) as exc:
            get_queues().dead_letter(f"out of attempts: {exc}", None, raw)


class DispatcherStep(bootsteps.StartStopStep):  # type: ignore[misc]
    """Starts the dispatcher with the worker (after its pool) and stops it, deregistering, on shutdown."""

    requires = {"celery.worker.components:Pool"}

    def __init__(self, worker: Any, **kwargs: Any) -> None:
        self.dispatcher: Dispatcher | None = None

    def start(self, worker: Any) -> None:
        consumed = worker.app.amqp.queues.consume_from or worker.app.amqp.queues
        classes = [PriorityClass(name.removeprefix("tenantq.")) for name in consumed
                   if name.startswith("tenantq.") and name.removeprefix("tenantq.") in PriorityClass.__members__]
        self.dispatcher = Dispatcher(worker.app, worker.hostname, classes, worker.concurrency)
        self.dispatcher.start()

    def stop(self, worker: Any) -> None:
        if self.dispatcher is not None:
            self.dispatcher.stop()
