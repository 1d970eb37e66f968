"""Every job ends exactly once, whatever fails: faults injected for real, then counted.

These tests run a stack of their own (a redis-server and an nx-27017 of this module, real Celery worker
processes, the loopback model server), because they kill workers with SIGKILL and stop and restart the
database and the broker under them. After each fault they count what a user would: jobs lost (no record
ended and none waiting), stuck (never ending), failed, usage recorded twice, and spend in Redis against the
token usage in the tenants' databases.
"""

from __future__ import annotations

import os
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from schemas.agents import AgentSettings, ModelConfig
from tenantq import services
from tenantq.localfleet import LocalFleet, Process, _reset_process_state
from tests.conftest import TEST_ENV, wait_for

CHAT = {"message": "Is the grey estate still available?", "conversation_id": "conv-9", "lead_id": "lead-9"}


class Stack:
    """A fleet whose Redis and MongoDB this module may stop, restart and kill under its workers."""

    def __init__(self, data_dir: Path, loopback: Any) -> None:
        self.data_dir = data_dir
        self.loopback = loopback
        self.redis = services.start_redis(data_dir)
        self.mongo = services.start_mongo(data_dir)
        self.env = {**TEST_ENV, "REDIS_URL": self.redis.url, "MONGODB_URL": self.mongo.url,
                    "TENANTQ_LEASE_TTL_S": "3", "TENANTQ_JOB_DEADLINE_S": "900", "MONGODB_TIMEOUT_MS": "1000"}
        self.fleet = LocalFleet(data_dir, self.env)
        self.workers: list[Process] = []

    def stop(self, service: services.Service) -> int:
        service.stop()
        return int(service.url.split(":")[2].split("/")[0])

    def start(self, name: str, port: int) -> services.Service:
        """Start a stopped service again on the same port and data."""
        start = services.start_redis if name == "redis-server" else services.start_mongo
        return start(self.data_dir, port=port)

    def restart(self, service: services.Service, down_s: float) -> services.Service:
        """Stop a service, keep it down for `down_s`, start it again on the same port and data."""
        port = self.stop(service)
        time.sleep(down_s)
        return self.start(service.name, port)

    def worker(self, **env: str) -> Process:
        process = self.fleet.start_worker(concurrency=16, extra_env=env)
        self.workers.append(process)
        return process

    def tenant(self, model: str, **options: Any) -> str:
        """A tenant whose agent answers through the loopback server's `model`."""
        from schemas.tenants import TenantCreate
        from tenancy.registry import create_tenant, register_model

        self.loopback.control(model=model, **options)
        register_model(ModelConfig(name=model, model=f"openai/{model}", api_base=self.loopback.api_base,
                                   api_key_env="LOOPBACK_API_KEY"))
        tenant_id = f"once-{uuid.uuid4().hex[:8]}"
        create_tenant(TenantCreate(tenant_id=tenant_id, agent=AgentSettings(model=model)))
        return tenant_id

    def submit(self, tenant_id: str, count: int) -> list[str]:
        from tenantq.client import Client

        client = Client(tenant_id=tenant_id)
        return [client.enqueue("chat_draft", {**CHAT, "conversation_id": f"c-{n}"}) for n in range(count)]

    def count(self, tenant_id: str, job_ids: list[str]) -> dict[str, Any]:
        """What a user would count once the fleet is quiet."""
        from tenancy.mongo import tenant_db
        from tenancy.queues import get_queues

        db = tenant_db(tenant_id)
        records = {doc["_id"]: doc for doc in db.executions.find({"_id": {"$in": job_ids}})}
        usage_docs = list(db.token_usage.find({"job_id": {"$in": job_ids}}))
        per_job: dict[str, int] = {}
        for doc in usage_docs:
            per_job[doc["job_id"]] = per_job.get(doc["job_id"], 0) + 1
        spend = get_queues().spend(tenant_id)
        return {
            "lost": len(set(job_ids) - set(records)),
            "unfinished": sum(doc["status"] in ("queued", "running") for doc in records.values()),
            "failed": sum(doc["status"] == "failed" for doc in records.values()),
            "succeeded": sum(doc["status"] == "succeeded" for doc in records.values()),
            "usage_twice": sum(n > 1 for n in per_job.values()),
            "results": db.results.count_documents({"job_id": {"$in": job_ids}}),
            "usage_tokens": sum(int(doc["total_tokens"]) for doc in usage_docs),
            "spend_tokens": spend.tokens,
            "spend_jobs": spend.jobs,
        }

    def settled(self, tenant_id: str, job_ids: list[str], timeout: float) -> dict[str, Any]:
        """Waits until every job ended and the queues hold nothing of this tenant, then counts."""
        from tenancy.queues import get_queues

        queues = get_queues()

        def quiet() -> dict[str, Any] | None:
            counts = self.count(tenant_id, job_ids)
            state = queues.tenant_state(tenant_id)
            busy = state["in_flight"] or sum(state["backlog"].values()) or queues.r.zcard(f"{queues.p}:delayed")
            return counts if counts["unfinished"] == 0 and not busy else None

        settled: dict[str, Any] = wait_for(quiet, timeout=timeout, interval=0.5)
        return settled


@pytest.fixture(scope="module")
def module_stack(tmp_path_factory: pytest.TempPathFactory, loopback: Any, fleet: LocalFleet) -> Iterator[Stack]:
    """The module's own stack; the session's services are given back to the other tests afterwards."""
    saved = {name: os.environ.get(name) for name in ("REDIS_URL", "MONGODB_URL", "TENANTQ_DATA_DIR")}
    lab = Stack(tmp_path_factory.mktemp("faults"), loopback)
    try:
        with lab.fleet:
            yield lab
    finally:
        lab.redis.stop()
        lab.mongo.stop()
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value
        _reset_process_state()


@pytest.fixture
def stack(module_stack: Stack) -> Iterator[Stack]:
    """The module's stack, with the workers a test started stopped after it, whatever its outcome."""
    yield module_stack
    while module_stack.workers:
        module_stack.workers.pop().stop()


@pytest.mark.timeout(300)
def test_workers_killed_mid_job_leave_every_job_ended_once_with_its_usage_and_spend_counted_once(
    stack: Stack,
) -> None:
    model = f"kill-{uuid.uuid4().hex[:6]}"
    tenant_id = stack.tenant(model, delay_s=0.2)
    workers = [stack.worker(), stack.worker()]
    job_ids = stack.submit(tenant_id, 300)
    for _ in range(3):  # kill -9 whichever worker is busiest, three times, each replaced at once
        time.sleep(1.5)
        victim = workers.pop(0)
        victim.kill()
        workers.append(stack.worker())
    counts = stack.settled(tenant_id, job_ids, timeout=120)
    assert counts["lost"] == 0 and counts["failed"] == 0 and counts["succeeded"] == 300
    assert counts["usage_twice"] == 0 and counts["results"] == 300
    assert counts["spend_tokens"] == counts["usage_tokens"] > 0
    assert counts["spend_jobs"] == 300
    from tenancy.mongo import tenant_db

    retried = tenant_db(tenant_id).executions.count_documents({"_id": {"$in": job_ids}, "attempts": {"$gt": 1}})
    starts = tenant_db(tenant_id).audit_log.count_documents({"job_id": {"$in": job_ids}, "event": "started"})
    assert retried > 0, "the kills landed while jobs ran"
    assert starts > 300, "every killed attempt left its start in the audit trail"


def test_an_outcome_recorded_by_a_worker_killed_before_it_finished_is_charged_once_and_never_run_again(
    stack: Stack,
) -> None:
    from schemas.jobs import JobOutcome, JobStatus, PriorityClass
    from schemas.usage import Usage
    from tenancy import jobs
    from tenancy.queues import get_queues

    model = f"cut-{uuid.uuid4().hex[:6]}"
    tenant_id = stack.tenant(model)
    [job_id] = stack.submit(tenant_id, 1)
    queues = get_queues()
    # What a worker killed between its last two steps leaves: it had registered, its job was admitted and
    # leased, and the outcome was recorded in the tenant's database; slot and spend were never given back.
    queues.register_worker("killed-worker", [PriorityClass.interactive], 1, ttl_s=1)
    admission = queues.admit(PriorityClass.interactive, lease_ttl_s=1, batch=1, fleet_cap=100)
    assert [a.job_id for a in admission.admitted] == [job_id]
    usage = Usage(prompt_tokens=30, completion_tokens=12, total_tokens=42, model=f"openai/{model}")
    assert jobs.start(tenant_id, job_id, 1) is None
    jobs.record(tenant_id, job_id, "chat_draft", JobOutcome(status=JobStatus.succeeded, attempt=1,
                                                             result={"reply": "recorded"}, usage=[usage]))
    stack.worker()
    counts = stack.settled(tenant_id, [job_id], timeout=30)
    assert counts["succeeded"] == 1 and counts["usage_twice"] == 0
    assert counts["spend_tokens"] == counts["usage_tokens"] == 42 and counts["spend_jobs"] == 1
    assert stack.loopback.requests(model) == [], "the job was not run, nor its model paid, again"
    assert jobs.view(tenant_id, job_id).result == {"reply": "recorded"}


def test_an_outcome_kept_by_a_worker_killed_before_recording_it_is_recorded_without_running_again(
    stack: Stack,
) -> None:
    from schemas.jobs import JobOutcome, JobStatus, PriorityClass
    from schemas.usage import Usage
    from tenancy import jobs
    from tenancy.queues import get_queues

    model = f"kept-{uuid.uuid4().hex[:6]}"
    tenant_id = stack.tenant(model)
    [job_id] = stack.submit(tenant_id, 1)
    queues = get_queues()
    # A worker killed after its model call answered and the outcome was kept, before MongoDB had it.
    queues.register_worker("killed-worker", [PriorityClass.interactive], 1, ttl_s=1)
    [admitted] = queues.admit(PriorityClass.interactive, lease_ttl_s=1, batch=1, fleet_cap=100).admitted
    assert jobs.start(tenant_id, job_id, admitted.attempt) is None
    usage = Usage(prompt_tokens=20, completion_tokens=5, total_tokens=25, model=f"openai/{model}")
    outcome = JobOutcome(status=JobStatus.succeeded, attempt=admitted.attempt, result={"reply": "kept"},
                         usage=[usage])
    queues.keep(job_id, outcome.model_dump_json())
    stack.worker()
    counts = stack.settled(tenant_id, [job_id], timeout=30)
    assert counts["succeeded"] == 1 and counts["usage_twice"] == 0
    assert counts["spend_tokens"] == counts["usage_tokens"] == 25
    assert stack.loopback.requests(model) == []
    from tenancy.mongo import tenant_db

    assert tenant_db(tenant_id).token_usage.find_one({"job_id": job_id})["attempt"] == 1  # type: ignore[index]
    assert tenant_db(tenant_id).executions.find_one({"_id": job_id})["attempts"] == 2  # type: ignore[index]
    assert not queues.r.hexists(f"{queues.p}:kept", job_id)


@pytest.mark.timeout(300)
def test_redis_down_for_five_seconds_under_running_jobs_loses_no_job_and_no_spend(stack: Stack) -> None:
    model = f"blip-{uuid.uuid4().hex[:6]}"
    tenant_id = stack.tenant(model, delay_s=0.2)
    worker = stack.worker()
    job_ids = stack.submit(tenant_id, 200)
    time.sleep(2)
    stack.redis = stack.restart(stack.redis, down_s=5)
    counts = stack.settled(tenant_id, job_ids, timeout=120)
    assert counts["lost"] == 0 and counts["failed"] == 0 and counts["succeeded"] == 200
    assert counts["usage_twice"] == 0
    assert counts["spend_tokens"] == counts["usage_tokens"] > 0
    assert worker.alive()


@pytest.mark.timeout(300)
def test_mongodb_down_for_sixty_seconds_fails_no_job_and_pays_no_model_call_twice(stack: Stack) -> None:
    model = f"dbdown-{uuid.uuid4().hex[:6]}"
    tenant_id = stack.tenant(model, delay_s=0.5)
    worker = stack.worker()
    job_ids = stack.submit(tenant_id, 200)
    time.sleep(3)
    stack.mongo = stack.restart(stack.mongo, down_s=60)
    counts = stack.settled(tenant_id, job_ids, timeout=180)
    assert counts["lost"] == 0 and counts["failed"] == 0 and counts["succeeded"] == 200
    assert counts["usage_twice"] == 0
    assert counts["spend_tokens"] == counts["usage_tokens"] > 0
    assert len(stack.loopback.requests(model)) == 200, "every model call was made once and recorded"
    assert worker.alive()


@pytest.mark.timeout(300)
def test_every_model_down_for_sixty_seconds_fails_no_job_and_the_circuit_spares_the_provider(
    stack: Stack,
) -> None:
    model = f"outage-{uuid.uuid4().hex[:6]}"
    tenant_id = stack.tenant(model, always_fail_status=500)
    stack.worker()
    job_ids = stack.submit(tenant_id, 100)
    time.sleep(30)
    stack.loopback.control(model=model, always_fail_status=429)
    time.sleep(30)
    during = len(stack.loopback.requests(model))
    stack.loopback.control(model=model, always_fail_status=None)
    counts = stack.settled(tenant_id, job_ids, timeout=150)
    assert counts["lost"] == 0 and counts["failed"] == 0 and counts["succeeded"] == 100
    assert counts["usage_twice"] == 0 and counts["spend_tokens"] == counts["usage_tokens"] > 0
    # Without the circuit, 100 jobs retrying 4 times per delivery for 60 s would have sent thousands.
    assert during < 400, during


def test_a_refused_request_fails_at_once_and_a_job_past_its_deadline_fails_with_the_providers_reason(
    stack: Stack,
) -> None:
    refused, down = f"refused-{uuid.uuid4().hex[:6]}", f"down-{uuid.uuid4().hex[:6]}"
    refusing, failing = stack.tenant(refused, always_fail_status=400), stack.tenant(down, always_fail_status=503)
    stack.worker(TENANTQ_JOB_DEADLINE_S="4")
    started = time.monotonic()
    [refused_job], [down_job] = stack.submit(refusing, 1), stack.submit(failing, 1)
    refused_counts = stack.settled(refusing, [refused_job], timeout=30)
    assert refused_counts["failed"] == 1
    down_counts = stack.settled(failing, [down_job], timeout=60)
    assert down_counts["failed"] == 1 and time.monotonic() - started >= 4
    from tenancy.jobs import view

    assert view(refusing, refused_job).error["code"] == "provider_rejected"  # type: ignore[index]
    error = view(failing, down_job).error
    assert error is not None and error["code"] == "provider_unavailable" and "fallback" in error["message"]


def test_jobs_refused_at_admission_while_the_database_is_down_are_failed_once_it_is_back(stack: Stack) -> None:
    from schemas.tenants import Plan
    from tenancy.queues import get_queues
    from tenancy.registry import update_plan

    model = f"budget-{uuid.uuid4().hex[:6]}"
    tenant_id = stack.tenant(model)
    update_plan(tenant_id, Plan(monthly_token_budget=10))  # each job's estimate is far more than that
    job_ids = stack.submit(tenant_id, 3)
    queues = get_queues()
    port = stack.stop(stack.mongo)
    worker = stack.worker()
    wait_for(lambda: queues.r.llen(f"{queues.p}:failing") == 3, timeout=30)
    time.sleep(2)
    assert queues.r.llen(f"{queues.p}:failing") == 3, "refused jobs wait for the database, none is dropped"
    stack.mongo = stack.start("nx-27017", port)
    wait_for(lambda: queues.r.llen(f"{queues.p}:failing") == 0, timeout=60)
    counts = stack.count(tenant_id, job_ids)
    assert counts["lost"] == 0 and counts["unfinished"] == 0 and counts["failed"] == 3
    from tenancy.jobs import view

    assert {view(tenant_id, job_id).error["code"] for job_id in job_ids} == {"budget_exceeded"}  # type: ignore[index]
    assert worker.alive()
