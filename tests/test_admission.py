"""Admission end to end, with real worker processes: order, caps, a killed worker, classes, new tenants,
dead letters, budgets under concurrency, and what the ingress refuses.

Tests that must control every worker a job could reach run their workers on a Redis database of their
own (same server, its own Celery queues, capacity registry and tenant queues), so the shared worker of
the session never takes their jobs. The others go through the ingress and the shared worker.
"""

from __future__ import annotations

import itertools
import json
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import pytest
import redis

from schemas.jobs import JobEnvelope, JobKind, PriorityClass
from schemas.tenants import Plan, TenantStatus
from tenancy.queues import TenantQueues, get_queues
from tenantq.localfleet import LocalFleet, Process
from tests.conftest import private_redis_db, wait_for

STANDARD, INTERACTIVE, BATCH = PriorityClass.standard, PriorityClass.interactive, PriorityClass.batch
EMAIL = {
    "from": "lead@example.com", "to": "sales@dealer.example", "subject": "Winter tyres",
    "body": "Do you fit winter tyres on Saturdays?", "message_id": "<adm@example.com>", "lead_id": "lead-4",
}
CHAT = {"message": "Is the blue one still available?", "conversation_id": "conv-1", "lead_id": "lead-7"}


def bearer(key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}


@dataclass
class Run:
    job_id: str
    tenant_id: str
    attempt: int
    started_at: float
    finished_at: float
    worker: str


class PrivateFleet:
    """Workers and tenant queues on a Redis database of their own."""

    def __init__(self, fleet: LocalFleet, start_worker: Callable[..., Process], db: int) -> None:
        base = fleet.env["REDIS_URL"].rsplit("/", 1)[0]
        self.url = f"{base}/{db}"
        self.q = TenantQueues(redis.Redis.from_url(self.url, decode_responses=True))
        self.q.r.flushdb()
        self._start = start_worker
        self.runs_key = f"runs-{uuid.uuid4().hex[:8]}"

    def worker(self, wait: bool = True, **kwargs: Any) -> Process:
        extra = {"REDIS_URL": self.url, **kwargs.pop("extra_env", {})}
        process = self._start(wait=False, extra_env=extra, **kwargs)
        if wait:
            wait_for(lambda: self.q.r.hexists(f"{self.q.p}:worker:slots", process.name) or not process.alive(),
                     timeout=60, interval=0.05)
            assert process.alive(), process.log_tail()
        return process

    def tenant(self, plan: Plan | None = None, tenant_id: str | None = None) -> str:
        tenant_id = tenant_id or f"adm-{uuid.uuid4().hex[:8]}"
        self.q.sync_tenant(tenant_id, plan or Plan(), TenantStatus.active)
        return tenant_id

    def noop(self, tenant_id: str, sleep_ms: float = 0, priority: PriorityClass = STANDARD) -> str:
        envelope = JobEnvelope(
            job_id=f"j-{uuid.uuid4().hex[:12]}", tenant_id=tenant_id, kind=JobKind.noop, priority=priority,
            payload={"sleep_ms": sleep_ms, "record_to": self.runs_key}, enqueued_at=datetime.now(UTC),
        )
        self.q.enqueue(envelope)
        return envelope.job_id

    def runs(self, count: int, timeout: float = 30) -> list[Run]:
        wait_for(lambda: self.q.r.llen(self.runs_key) >= count, timeout=timeout, interval=0.05)
        found = [Run(**{k: v for k, v in json.loads(raw).items() if k != "enqueued_at"})
                 for raw in self.q.r.lrange(self.runs_key, 0, -1)]
        return sorted(found, key=lambda r: r.started_at)

    def idle(self) -> bool:
        p, r = self.q.p, self.q.r
        return (int(r.get(f"{p}:inflight") or 0) == 0 and r.zcard(f"{p}:leases") == 0
                and r.hlen(f"{p}:lease") == 0 and r.hlen(f"{p}:lease:env") == 0)


@pytest.fixture
def private(fleet: LocalFleet, start_worker: Callable[..., Process]) -> Iterator[PrivateFleet]:
    lab = PrivateFleet(fleet, start_worker, private_redis_db())
    yield lab
    lab.q.r.flushdb()


def most_at_once(runs: list[Run]) -> int:
    events = sorted([(r.started_at, 1) for r in runs] + [(r.finished_at, -1) for r in runs])
    return max(itertools.accumulate(delta for _, delta in events))


# --- order, caps, leases and classes, on real workers ---------------------------------------------------------


def test_a_worker_runs_the_tenants_jobs_in_weighted_round_robin_order(private: PrivateFleet) -> None:
    heavy, b, c = private.tenant(Plan(weight=2)), private.tenant(), private.tenant()
    for t in (heavy, b, c):
        for _ in range(4):
            private.noop(t)
    private.worker(concurrency=1)  # one slot: jobs run in the order they are admitted
    order = [r.tenant_id for r in private.runs(12)]
    assert order == [heavy, heavy, b, c, heavy, heavy, b, c, b, c, b, c]
    wait_for(private.idle, timeout=10)


def test_a_tenant_never_has_more_jobs_running_than_its_cap_nor_the_fleet_more_than_the_fleet_cap(
    private: PrivateFleet,
) -> None:
    capped, others = private.tenant(Plan(max_in_flight=2)), [private.tenant(), private.tenant()]
    for t in (capped, *others):
        for _ in range(6):
            private.noop(t, sleep_ms=250)
    private.worker(concurrency=8, extra_env={"TENANTQ_FLEET_MAX_IN_FLIGHT": "5"})
    runs = private.runs(18)
    assert most_at_once([r for r in runs if r.tenant_id == capped]) == 2
    assert most_at_once(runs) == 5  # 8 threads, but the fleet cap is 5
    wait_for(private.idle, timeout=10)


def test_a_job_on_a_killed_worker_is_handed_on_when_its_lease_expires_and_no_slot_leaks(
    private: PrivateFleet,
) -> None:
    t = private.tenant(Plan(max_in_flight=1))
    doomed = private.worker(concurrency=2, extra_env={"TENANTQ_LEASE_TTL_S": "2"})
    job_id = private.noop(t, sleep_ms=1500)
    wait_for(lambda: private.q.tenant_state(t)["in_flight"] == 1, timeout=10, interval=0.02)
    time.sleep(0.5)  # it is running now
    doomed.kill()
    rescuer = private.worker(concurrency=2)
    [run] = private.runs(1, timeout=30)
    assert (run.job_id, run.attempt, run.worker) == (job_id, 2, rescuer.name)
    wait_for(private.idle, timeout=10)
    assert private.q.tenant_state(t)["in_flight"] == 0
    assert private.q.spend(t).jobs == 1
    # The dead worker's capacity is forgotten once its heartbeat runs out.
    wait_for(lambda: not private.q.r.hexists(f"{private.q.p}:worker:slots", doomed.name), timeout=15)


def test_a_worker_serving_only_interactive_runs_chat_drafts_but_leaves_batch_jobs_queued(
    private: PrivateFleet, make_tenant: Any,
) -> None:
    from tenancy import jobs

    tenant_id, _ = make_tenant("cls")
    private.tenant(tenant_id=tenant_id)

    def submit(kind: JobKind, payload: dict[str, Any], priority: PriorityClass) -> str:
        envelope = JobEnvelope(job_id=f"j-{uuid.uuid4().hex[:12]}", tenant_id=tenant_id, kind=kind,
                               priority=priority, payload=payload, enqueued_at=jobs.now())
        jobs.create(envelope, None)
        private.q.enqueue(envelope)
        return envelope.job_id

    def status(job_id: str) -> str:
        return jobs.view(tenant_id, job_id).status.value

    private.worker(concurrency=4, classes=("interactive",))
    batch_job = submit(JobKind.email_reply, EMAIL, BATCH)  # a job may ask for a class
    chat_job = submit(JobKind.chat_draft, CHAT, INTERACTIVE)
    wait_for(lambda: status(chat_job) == "succeeded", timeout=30)
    time.sleep(0.5)
    assert status(batch_job) == "queued"
    assert private.q.backlog(BATCH) == 1
    private.worker(concurrency=2, classes=("batch",))
    wait_for(lambda: status(batch_job) == "succeeded", timeout=30)
    assert jobs.view(tenant_id, batch_job).priority is BATCH
    wait_for(private.idle, timeout=10)


# --- through the ingress and the shared worker ------------------------------------------------------------------


def poll(api: Any, key: str, job_id: str, timeout: float = 30) -> dict[str, Any]:
    def finished() -> dict[str, Any] | None:
        body: dict[str, Any] = api.get(f"/v1/jobs/{job_id}", headers=bearer(key)).json()
        return body if body["status"] in ("succeeded", "failed") else None

    found: dict[str, Any] = wait_for(finished, timeout)
    return found


def test_a_tenant_created_after_the_worker_started_is_served_without_a_restart(
    api: Any, worker: Process, make_tenant: Any,
) -> None:
    assert get_queues().r.hexists(f"{get_queues().p}:worker:slots", worker.name)
    tenant_id, key = make_tenant("new")
    answer = api.post("/v1/jobs", json={"kind": "chat_draft", "payload": CHAT}, headers=bearer(key))
    assert answer.status_code == 202, answer.text
    job = poll(api, key, answer.json()["job_id"])
    assert job["status"] == "succeeded" and job["tenant_id"] == tenant_id


def test_undecodable_messages_are_dead_lettered_with_the_reason_and_the_fleet_keeps_serving(
    api: Any, worker: Process, make_tenant: Any,
) -> None:
    queues = get_queues()
    tenant_id, key = make_tenant("dead")
    not_json = f"garbage {uuid.uuid4().hex}"
    bogus_id = f"bogus-{uuid.uuid4().hex[:8]}"
    not_a_job = json.dumps({"job_id": bogus_id, "kind": "no-such-kind"})
    queues._run("enqueue", tenant_id, STANDARD.value, not_json)
    queues._run("enqueue", tenant_id, STANDARD.value, not_a_job)
    answer = api.post("/v1/jobs", json={"kind": "email_reply", "payload": EMAIL}, headers=bearer(key))
    assert poll(api, key, answer.json()["job_id"])["status"] == "succeeded"

    def dead_letters() -> list[dict[str, Any]]:
        return [d for d in queues.dead_letters(10_000) if not_json in d["message"] or bogus_id in d["message"]]

    found = wait_for(lambda: len(dead_letters()) == 2 and dead_letters(), timeout=10)
    reasons = sorted(d["reason"] for d in found)
    assert reasons[0].startswith("malformed job message") and "tenant_id" in reasons[0]
    assert reasons[1].startswith("undecodable message in tenant queue")
    assert queues.tenant_state(tenant_id)["in_flight"] == 0


@dataclass
class PricedModel:
    name: str
    estimate_tokens: int
    estimate_usd: float
    prompt_tokens: int
    max_tokens: int


IN_PRICE, OUT_PRICE = 1e-6, 2e-6


def priced_tenant(loopback: Any, make_tenant: Any, budget_usd: float | None, **plan: Any) -> tuple[str, str]:
    from schemas.agents import AgentSettings, ModelConfig
    from tenancy.registry import register_model

    name = f"budget-{uuid.uuid4().hex[:8]}"
    register_model(ModelConfig(name=name, model=f"openai/{name}", api_base=loopback.api_base,
                               api_key_env="LOOPBACK_API_KEY", input_cost_per_token=IN_PRICE,
                               output_cost_per_token=OUT_PRICE))
    return make_tenant("bud", agent=AgentSettings(model=name, max_tokens=100),
                       plan=Plan(monthly_budget_usd=budget_usd, **plan))


def estimate_of(tenant_id: str) -> tuple[int, float]:
    from tasks.estimate import estimate

    return estimate(tenant_id, JobKind.chat_draft, CHAT)


def model_of(tenant_id: str) -> str:
    from tenancy.registry import agent_config

    return agent_config(tenant_id).models[0].name


def test_two_hundred_concurrent_jobs_never_spend_past_a_small_budget_and_the_rest_end_budget_exceeded(
    api: Any, worker: Process, loopback: Any, make_tenant: Any,
) -> None:
    from tenancy.mongo import tenant_db

    tenant_id, key = priced_tenant(loopback, make_tenant, budget_usd=None)
    tokens, usd = estimate_of(tenant_id)
    prompt = tokens - 100
    real = prompt * IN_PRICE + 40 * OUT_PRICE  # each call really costs less than its reservation
    loopback.control(model=model_of(tenant_id), prompt_tokens=prompt, completion_tokens=40, delay_s=0.2)
    budget = round(20.5 * real, 6)
    from tenancy.registry import update_plan

    update_plan(tenant_id, Plan(monthly_budget_usd=budget))
    job_ids = []
    for _ in range(200):
        answer = api.post("/v1/jobs", json={"kind": "chat_draft", "payload": CHAT}, headers=bearer(key))
        assert answer.status_code == 202, answer.text
        job_ids.append(answer.json()["job_id"])

    executions = tenant_db(tenant_id).executions
    wait_for(lambda: executions.count_documents({"status": {"$in": ["succeeded", "failed"]}}) == 200, 60)
    succeeded = executions.count_documents({"status": "succeeded"})
    failed = list(executions.find({"status": "failed"}))
    assert succeeded + len(failed) == 200
    assert {f["error"]["code"] for f in failed} == {"budget_exceeded"}
    assert "budget" in failed[0]["error"]["message"] and "Raise the plan's budget" in failed[0]["error"]["message"]

    spend = get_queues().spend(tenant_id)
    in_flight_reservations = worker_slots() * usd
    assert spend.usd <= budget + in_flight_reservations  # the bound the design promises
    assert spend.usd <= budget  # and here, with calls cheaper than reserved, no overspend at all
    assert budget - spend.usd < usd  # no job was refused while it could still fit
    assert succeeded == spend.jobs == round(spend.usd / real)
    assert spend.reserved_usd == 0 and get_queues().tenant_state(tenant_id)["in_flight"] == 0


def worker_slots() -> int:
    queues = get_queues()
    return sum(json.loads(s)["concurrency"] for s in queues.r.hvals(f"{queues.p}:worker:slots"))


def test_once_the_budget_is_spent_the_ingress_answers_402_and_enqueues_nothing(
    api: Any, worker: Process, loopback: Any, make_tenant: Any,
) -> None:
    from tenancy.mongo import tenant_db
    from tenancy.registry import update_plan

    tenant_id, key = priced_tenant(loopback, make_tenant, budget_usd=None)
    tokens, usd = estimate_of(tenant_id)
    # This call uses far more than its estimate (a long answer), so it spends past the budget.
    loopback.control(model=model_of(tenant_id), prompt_tokens=(tokens - 100) * 10, completion_tokens=100)
    update_plan(tenant_id, Plan(monthly_budget_usd=round(usd * 1.5, 6)))
    first = api.post("/v1/jobs", json={"kind": "chat_draft", "payload": CHAT}, headers=bearer(key))
    assert poll(api, key, first.json()["job_id"])["status"] == "succeeded"
    assert get_queues().spend(tenant_id).usd > usd * 1.5

    answer = api.post("/v1/jobs", json={"kind": "chat_draft", "payload": CHAT}, headers=bearer(key))
    assert answer.status_code == 402
    assert answer.json()["error"]["code"] == "budget_exceeded"
    assert tenant_db(tenant_id).executions.count_documents({}) == 1
    assert get_queues().tenant_state(tenant_id)["backlog"] == {"interactive": 0, "standard": 0, "batch": 0}


def test_a_suspended_tenants_job_is_refused_at_the_ingress_and_nothing_is_enqueued(
    api: Any, make_tenant: Any,
) -> None:
    from tenancy.mongo import tenant_db
    from tenancy.registry import set_status

    tenant_id, key = make_tenant("sus")
    set_status(tenant_id, TenantStatus.suspended)
    answer = api.post("/v1/jobs", json={"kind": "chat_draft", "payload": CHAT}, headers=bearer(key))
    assert answer.status_code == 403
    assert answer.json()["error"]["code"] == "tenant_suspended"
    assert tenant_db(tenant_id).executions.count_documents({}) == 0
    assert get_queues().tenant_state(tenant_id)["backlog"] == {"interactive": 0, "standard": 0, "batch": 0}


def test_a_priority_class_that_does_not_exist_is_refused_with_422(api: Any, make_tenant: Any) -> None:
    tenant_id, key = make_tenant("cls")
    body = {"kind": "chat_draft", "payload": CHAT, "priority": "urgent"}
    answer = api.post("/v1/jobs", json=body, headers=bearer(key))
    assert answer.status_code == 422
    fields = answer.json()["error"]["fields"]
    assert any(f["loc"][-1] == "priority" and "interactive" in f["msg"] for f in fields), fields
    assert get_queues().tenant_state(tenant_id)["backlog"] == {"interactive": 0, "standard": 0, "batch": 0}


@pytest.mark.parametrize("plan", [{"weight": 0}, {"weight": 101}, {"max_in_flight": -1},
                                  {"max_in_flight": 100_001}, {"requests_per_minute": 0},
                                  {"monthly_budget_usd": -1}])
def test_a_plan_with_a_weight_cap_or_limit_out_of_range_is_refused_and_no_tenant_is_created(
    services: dict[str, str], plan: dict[str, Any],
) -> None:
    from pydantic import ValidationError

    from schemas.tenants import TenantCreate

    tenant_id = f"bad-{uuid.uuid4().hex[:8]}"
    with pytest.raises(ValidationError) as error:
        TenantCreate(tenant_id=tenant_id, plan=plan)
    assert [e["loc"] for e in error.value.errors()] == [("plan", *plan)]
    assert not get_queues().has_tenant(tenant_id)
