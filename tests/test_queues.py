"""Admission over the real Redis: order, weights, caps, classes, budgets, rate limits, leases, dead letters.

These drive `TenantQueues.admit` (the Lua path every dispatcher runs) directly, with a fake worker's capacity
registered under a key prefix of each test's own, so the shared worker never sees their jobs and their
capacity never reaches it.
"""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import pytest

from core.errors import TenantSuspended, UnknownTenant
from schemas.jobs import JobEnvelope, JobKind, PriorityClass
from schemas.tenants import Plan, TenantStatus
from tenancy.queues import Admission, CeleryRoute, TenantQueues

STANDARD, INTERACTIVE, BATCH = PriorityClass.standard, PriorityClass.interactive, PriorityClass.batch
ALL = list(PriorityClass)


class Lab:
    """Tenant queues under a prefix of their own, with helpers to make tenants, jobs and fake workers."""

    def __init__(self, queues: TenantQueues) -> None:
        self.q = queues
        self.workers: list[str] = []

    def tenant(self, plan: Plan | None = None, status: TenantStatus = TenantStatus.active) -> str:
        tenant_id = f"t-{uuid.uuid4().hex[:8]}"
        self.q.sync_tenant(tenant_id, plan or Plan(), status)
        return tenant_id

    def job(self, tenant_id: str, priority: PriorityClass = STANDARD, *, usd: float = 0.0, tokens: int = 0,
            payload: dict[str, Any] | None = None) -> JobEnvelope:
        envelope = JobEnvelope(
            job_id=f"j-{uuid.uuid4().hex[:12]}", tenant_id=tenant_id, kind=JobKind.noop, priority=priority,
            payload=payload or {}, enqueued_at=datetime.now(UTC), estimate_usd=usd, estimate_tokens=tokens,
        )
        self.q.enqueue(envelope)
        return envelope

    def worker(self, concurrency: int, classes: list[PriorityClass] | None = None) -> str:
        name = f"fake-{uuid.uuid4().hex[:6]}"
        self.q.register_worker(name, classes or ALL, concurrency, ttl_s=60)
        self.workers.append(name)
        return name

    def admit(self, classes: PriorityClass | list[PriorityClass] = STANDARD, batch: int = 100,
              fleet_cap: int = 10_000, ttl_s: float = 60, route: CeleryRoute | None = None) -> Admission:
        return self.q.admit(classes, lease_ttl_s=ttl_s, batch=batch, fleet_cap=fleet_cap, route=route)

    def int(self, key: str, field: str | None = None) -> int:
        value = self.q.r.hget(f"{self.q.p}:{key}", field) if field else self.q.r.get(f"{self.q.p}:{key}")
        return int(value or 0)


def tenants_of(admission: Admission) -> list[str]:
    return [json.loads(a.envelope)["tenant_id"] for a in admission.admitted]


@pytest.fixture
def lab(services: dict[str, str]) -> Iterator[Lab]:
    from tenancy.queues import get_queues

    queues = TenantQueues(get_queues().r, prefix=f"tqtest-{uuid.uuid4().hex[:8]}")
    lab = Lab(queues)
    yield lab
    for name in lab.workers:
        queues.deregister_worker(name)
    for key in queues.r.scan_iter(f"{queues.p}:*", count=1000):
        queues.r.delete(key)


def test_tenants_with_backlog_are_served_in_turn_each_in_arrival_order(lab: Lab) -> None:
    a, b, c = lab.tenant(), lab.tenant(), lab.tenant()
    jobs = {t: [lab.job(t).job_id for _ in range(3)] for t in (a, b, c)}
    lab.worker(concurrency=100)
    admission = lab.admit()
    assert tenants_of(admission) == [a, b, c] * 3
    for t in (a, b, c):
        assert [j.job_id for j in admission.admitted if j.job_id in jobs[t]] == jobs[t]


def test_a_tenants_weight_is_how_many_jobs_it_gets_per_turn(lab: Lab) -> None:
    heavy, light = lab.tenant(Plan(weight=3)), lab.tenant()
    for _ in range(6):
        lab.job(heavy)
    for _ in range(4):
        lab.job(light)
    lab.worker(concurrency=100)
    assert tenants_of(lab.admit()) == [heavy] * 3 + [light] + [heavy] * 3 + [light] * 3


def test_a_lone_tenant_gets_every_free_slot_and_no_more(lab: Lab) -> None:
    lone = lab.tenant()
    for _ in range(20):
        lab.job(lone)
    lab.worker(concurrency=8)
    assert len(lab.admit().admitted) == 8
    assert lab.admit().admitted == []
    assert lab.q.backlog(STANDARD) == 12


def test_a_tenant_at_its_cap_waits_while_other_tenants_are_served(lab: Lab) -> None:
    capped, other = lab.tenant(Plan(max_in_flight=2)), lab.tenant()
    capped_jobs = [lab.job(capped) for _ in range(5)]
    for _ in range(3):
        lab.job(other)
    lab.worker(concurrency=100)
    first = lab.admit()
    assert sorted(tenants_of(first)) == sorted([capped] * 2 + [other] * 3)
    assert lab.admit().admitted == []
    done = next(a for a in first.admitted if a.job_id == capped_jobs[0].job_id)
    assert lab.q.finish(done.job_id, done.attempt, 0, 0)
    assert [a.job_id for a in lab.admit().admitted] == [capped_jobs[2].job_id]
    assert lab.int(f"tenant:{capped}", "inflight") == 2


def test_the_fleet_cap_bounds_jobs_in_flight_across_all_tenants(lab: Lab) -> None:
    for t in (lab.tenant(), lab.tenant()):
        for _ in range(5):
            lab.job(t)
    lab.worker(concurrency=100)
    first = lab.admit(fleet_cap=3)
    assert len(first.admitted) == 3
    assert lab.admit(fleet_cap=3).admitted == []
    lab.q.finish(first.admitted[0].job_id, first.admitted[0].attempt, 0, 0)
    assert len(lab.admit(fleet_cap=3).admitted) == 1
    assert lab.int("inflight") == 3


def test_a_class_is_admitted_only_within_the_capacity_of_workers_serving_it(lab: Lab) -> None:
    t = lab.tenant()
    chat, batch = lab.job(t, INTERACTIVE), lab.job(t, BATCH)
    lab.worker(concurrency=4, classes=[INTERACTIVE, STANDARD])
    assert [a.job_id for a in lab.admit(ALL).admitted] == [chat.job_id]
    assert lab.q.backlog(BATCH) == 1
    lab.worker(concurrency=1, classes=[BATCH])
    assert [a.job_id for a in lab.admit(ALL).admitted] == [batch.job_id]


def test_interactive_jobs_are_admitted_before_standard_and_batch_ones(lab: Lab) -> None:
    t = lab.tenant()
    batch, standard, chat = lab.job(t, BATCH), lab.job(t, STANDARD), lab.job(t, INTERACTIVE)
    lab.worker(concurrency=2)
    assert [a.job_id for a in lab.admit(ALL).admitted] == [chat.job_id, standard.job_id]
    assert batch.job_id not in [a.job_id for a in lab.admit(ALL).admitted]


def test_a_worker_that_stops_heartbeating_takes_its_capacity_with_it(lab: Lab) -> None:
    t = lab.tenant()
    for _ in range(3):
        lab.job(t)
    lab.q.register_worker("gone", ALL, 10, ttl_s=0.05)
    lab.workers.append("gone")
    time.sleep(0.1)
    assert lab.admit().admitted == []
    assert not lab.q.r.hexists(f"{lab.q.p}:worker:slots", "gone")


def test_an_expired_lease_hands_the_job_on_and_gives_its_slot_back(lab: Lab) -> None:
    t = lab.tenant(Plan(max_in_flight=1))
    job = lab.job(t, usd=0.25, tokens=100)
    lab.worker(concurrency=10)
    first = lab.admit(ttl_s=0.05).admitted
    assert [(a.job_id, a.attempt) for a in first] == [(job.job_id, 1)]
    time.sleep(0.1)
    reaped = lab.q.reap(max_attempts=3)
    assert reaped.requeued == 1 and reaped.exhausted == []
    assert lab.int(f"tenant:{t}", "inflight") == 0 and lab.int("inflight") == 0
    assert lab.q.spend(t).reserved_usd == 0
    again = lab.admit().admitted
    assert [(a.job_id, a.attempt) for a in again] == [(job.job_id, 2)]
    # The first delivery turns up late: it is stale and changes nothing.
    assert not lab.q.claim(job.job_id, 1, 60)
    assert not lab.q.finish(job.job_id, 1, 0, 0)
    assert lab.int(f"tenant:{t}", "inflight") == 1
    assert lab.q.claim(job.job_id, 2, 60)
    assert lab.q.finish(job.job_id, 2, 0.1, 40)
    assert lab.int(f"tenant:{t}", "inflight") == 0
    assert lab.q.spend(t).usd == pytest.approx(0.1) and lab.q.spend(t).reserved_usd == 0


def test_a_job_whose_workers_keep_dying_is_given_up_after_the_last_attempt(lab: Lab) -> None:
    t = lab.tenant()
    job = lab.job(t)
    lab.worker(concurrency=10)
    for _ in range(2):
        [admitted] = lab.admit(ttl_s=0.05).admitted
        assert lab.q.claim(job.job_id, admitted.attempt, 0.05)  # a worker started it, then died
        time.sleep(0.1)
        reaped = lab.q.reap(max_attempts=2)
    assert reaped.requeued == 0
    assert [json.loads(raw)["job_id"] for raw in reaped.exhausted] == [job.job_id]
    assert lab.int("inflight") == 0 and lab.q.backlog(STANDARD) == 0
    [entry] = lab.q.failing()
    assert json.loads(entry)["reason"] == "exhausted", "a dispatcher records its failure durably"


def test_a_lease_that_expires_before_its_message_was_taken_costs_the_job_no_attempt(lab: Lab) -> None:
    t = lab.tenant()
    lab.job(t)
    lab.worker(concurrency=10)
    for attempt in range(1, 6):  # the message waited behind busy workers each time, never started
        assert [a.attempt for a in lab.admit(ttl_s=0.01).admitted] == [attempt]
        time.sleep(0.05)
        assert lab.q.reap(max_attempts=2).requeued == 1
    assert lab.q.failing() == [] and lab.q.backlog(STANDARD) == 1


def test_a_job_waits_for_reservations_in_flight_and_is_refused_once_the_budget_cannot_hold_it(lab: Lab) -> None:
    t = lab.tenant(Plan(monthly_budget_usd=1.0))
    jobs = [lab.job(t, usd=0.4) for _ in range(4)]
    lab.worker(concurrency=10)
    first = lab.admit()
    assert [a.job_id for a in first.admitted] == [j.job_id for j in jobs[:2]]
    assert first.rejected == []  # the third fits once the two in flight turn out cheaper than reserved
    for a in first.admitted:
        lab.q.finish(a.job_id, a.attempt, 0.15, 10)
    second = lab.admit()
    assert [a.job_id for a in second.admitted] == [jobs[2].job_id]  # 0.3 spent + 0.4 + 0.4 > 1.0
    assert second.rejected == []
    lab.q.finish(second.admitted[0].job_id, second.admitted[0].attempt, 0.45, 10)
    third = lab.admit()  # 0.75 spent: 0.4 more cannot fit whatever happens
    assert third.admitted == []
    assert [(r.job_id, r.reason) for r in third.rejected] == [(jobs[3].job_id, "budget_exceeded")]
    spend = lab.q.spend(t)
    assert spend.usd == pytest.approx(0.75) and spend.reserved_usd == 0 and spend.jobs == 3


def test_a_token_budget_refuses_the_job_that_would_exceed_it(lab: Lab) -> None:
    t = lab.tenant(Plan(monthly_token_budget=1000))
    small, big = lab.job(t, tokens=600), lab.job(t, tokens=600)
    lab.worker(concurrency=10)
    admitted = lab.admit().admitted
    assert [a.job_id for a in admitted] == [small.job_id]
    lab.q.finish(admitted[0].job_id, admitted[0].attempt, 0, 600)
    assert [r.job_id for r in lab.admit().rejected] == [big.job_id]


def test_requests_per_minute_hold_a_tenant_back_until_the_next_minute(lab: Lab) -> None:
    limited, free = lab.tenant(Plan(requests_per_minute=2)), lab.tenant()
    for _ in range(4):
        lab.job(limited)
        lab.job(free)
    lab.worker(concurrency=100)
    admitted = tenants_of(lab.admit())
    assert admitted.count(limited) == 2 and admitted.count(free) == 4
    assert lab.admit().admitted == []
    assert lab.q.backlog(STANDARD) == 2
    woken_at = lab.q.r.zscore(f"{lab.q.p}:sleep", limited)
    assert woken_at is not None and woken_at % 60_000 == 0 and woken_at > time.time() * 1000


def test_tokens_per_minute_hold_a_tenant_back_once_its_minute_is_used(lab: Lab) -> None:
    t = lab.tenant(Plan(tokens_per_minute=1000))
    for _ in range(3):
        lab.job(t, tokens=400)
    lab.worker(concurrency=100)
    assert len(lab.admit().admitted) == 2
    assert lab.q.r.zscore(f"{lab.q.p}:sleep", t) is not None


def test_a_new_tenant_joins_the_turn_behind_a_busy_one_without_any_restart(lab: Lab) -> None:
    busy = lab.tenant()
    for _ in range(50):
        lab.job(busy)
    lab.worker(concurrency=4)
    running = lab.admit().admitted
    newcomer = lab.tenant()
    first = lab.job(newcomer)
    for job in running[:2]:
        lab.q.finish(job.job_id, job.attempt, 0, 0)
    assert tenants_of(lab.admit()) == [busy, newcomer]
    assert lab.q.tenant_state(newcomer)["in_flight"] == 1
    assert lab.q.r.hexists(f"{lab.q.p}:lease", first.job_id)


def test_a_suspended_tenant_can_enqueue_nothing_and_its_waiting_jobs_stay_until_it_is_resumed(lab: Lab) -> None:
    t = lab.tenant()
    job = lab.job(t)
    lab.q.sync_tenant(t, Plan(), TenantStatus.suspended)
    with pytest.raises(TenantSuspended):
        lab.job(t)
    with pytest.raises(UnknownTenant):
        lab.job("never-created")
    lab.worker(concurrency=10)
    assert lab.admit().admitted == []
    lab.q.sync_tenant(t, Plan(), TenantStatus.active)
    assert [a.job_id for a in lab.admit().admitted] == [job.job_id]


def test_an_undecodable_message_goes_to_the_dead_letter_list_and_the_next_job_is_served(lab: Lab) -> None:
    t = lab.tenant()
    lab.q._run("enqueue", t, STANDARD.value, "{this is not json")
    good = lab.job(t)
    lab.worker(concurrency=10)
    admission = lab.admit()
    assert [a.job_id for a in admission.admitted] == [good.job_id]
    assert admission.dead == 1
    [dead] = lab.q.dead_letters()
    assert dead["tenant"] == t and dead["message"] == "{this is not json"
    assert "undecodable message in tenant queue" in dead["reason"]
    assert lab.q.backlog(STANDARD) == 0


def test_the_backlog_of_each_class_and_each_tenants_state_are_visible(lab: Lab) -> None:
    t = lab.tenant()
    for _ in range(3):
        lab.job(t)
    lab.job(t, BATCH)
    assert (lab.q.backlog(STANDARD), lab.q.backlog(BATCH), lab.q.backlog(INTERACTIVE)) == (3, 1, 0)
    lab.worker(concurrency=1, classes=[STANDARD])
    lab.admit()
    state = lab.q.tenant_state(t)
    assert state["backlog"] == {"interactive": 0, "standard": 2, "batch": 1}
    assert state["in_flight"] == 1
    assert state["oldest_age_s"] is not None and 0 <= state["oldest_age_s"] < 30
    assert lab.q.tenants() == [t]


def test_admission_publishes_each_job_as_a_celery_message_carrying_the_envelope_untouched(lab: Lab) -> None:
    t = lab.tenant()
    payload: dict[str, Any] = {"empty_list": [], "empty_object": {}, "text": "Grüße \"quoted\"", "n": 0.1}
    job = lab.job(t, INTERACTIVE, payload=payload)
    lab.worker(concurrency=1)
    prefix = f"{lab.q.p}:celery."
    route = CeleryRoute(prefix, {"noop": "tenantq.noop"}, "tenantq.run_job")
    lab.admit(ALL, route=route)
    [raw] = lab.q.r.lrange(prefix + "interactive", 0, -1)
    message = json.loads(raw)
    assert message["headers"]["task"] == "tenantq.noop"
    assert message["headers"]["id"] == job.job_id
    assert message["properties"]["delivery_info"]["routing_key"] == prefix + "interactive"
    assert "Grüße" not in message["headers"]["argsrepr"]  # payloads stay out of Celery's logs
    (envelope, attempt), kwargs, _ = json.loads(message["body"])
    assert (attempt, kwargs) == (1, {})
    assert JobEnvelope.model_validate(envelope) == job
    assert envelope["payload"] == payload


def test_a_spend_beyond_what_one_job_may_book_is_bounded_and_no_counter_overflows(lab: Lab) -> None:
    from schemas.jobs import MAX_ESTIMATE_TOKENS, MAX_ESTIMATE_USD

    t = lab.tenant()
    first, second = lab.job(t), lab.job(t)
    lab.worker(concurrency=10)
    admitted = {a.job_id: a.attempt for a in lab.admit().admitted}
    assert lab.q.claim(first.job_id, admitted[first.job_id], 60)
    assert lab.q.finish(first.job_id, admitted[first.job_id], float("inf"), 10**30)
    assert lab.q.claim(second.job_id, admitted[second.job_id], 60)
    assert lab.q.finish(second.job_id, admitted[second.job_id], float("nan"), -5)
    spend = lab.q.spend(t)
    assert spend.usd == 2 * MAX_ESTIMATE_USD and spend.tokens == MAX_ESTIMATE_TOKENS and spend.jobs == 2
