"""Poison never stops a worker: faults injected for real into the Celery queues and the tenant queues.

Raw messages are pushed into the Redis lists a real worker process reads, on a Redis database of the test's
own; then we count what a person cares about: the worker alive, jobs of every class still run, every bad
message in the dead-letter list with a reason one can act on, and no counter moved by a bad number.
"""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys
import uuid
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from typing import Any

import pytest
from pydantic import ValidationError

from core.errors import InvalidJob
from schemas.jobs import MAX_ESTIMATE_TOKENS, JobEnvelope, JobKind, PriorityClass
from schemas.tenants import Plan
from tenancy.queues import TenantQueues, get_queues
from tenantq.localfleet import LocalFleet, Process
from tests.conftest import private_redis_db, wait_for
from tests.test_admission import PrivateFleet
from tests.test_queues import Lab

STANDARD = PriorityClass.standard
CLASSES = [f"tenantq.{c.value}" for c in PriorityClass]


@pytest.fixture
def private(fleet: LocalFleet, start_worker: Callable[..., Process]) -> Iterator[PrivateFleet]:
    lab = PrivateFleet(fleet, start_worker, private_redis_db())
    yield lab
    lab.q.r.flushdb()


@pytest.fixture
def lab(services: dict[str, str]) -> Iterator[Lab]:
    queues = TenantQueues(get_queues().r, prefix=f"tqpoison-{uuid.uuid4().hex[:8]}")
    lab = Lab(queues)
    yield lab
    for name in lab.workers:
        queues.deregister_worker(name)
    for key in queues.r.scan_iter(f"{queues.p}:*", count=1000):
        queues.r.delete(key)


def kombu_message(queue: str, headers: dict[str, Any], body: str, **properties: Any) -> str:
    """A message in the shape kombu's Redis transport stores, with the parts a test wants wrong."""
    return json.dumps({
        "body": body, "content-type": "application/json", "content-encoding": "utf-8", "headers": headers,
        "properties": {"delivery_tag": uuid.uuid4().hex, "delivery_info": {"exchange": "", "routing_key": queue},
                       **properties},
    })


def same_message(stored: str, raw: str) -> bool:
    """A dead letter keeps a message that decoded as JSON re-encoded (and redacted), the rest as its text."""
    if stored == raw:
        return True
    try:
        return bool(json.loads(stored) == json.loads(raw))
    except (ValueError, RecursionError):
        return False


# --- the Celery queues ------------------------------------------------------------------------------------


def test_poison_in_the_celery_queues_is_dead_lettered_and_the_worker_goes_on_running_every_class(
    private: PrivateFleet,
) -> None:
    worker = private.worker(concurrency=1)  # one slot: a message that kept its slot would stall the worker
    m = uuid.uuid4().hex
    poison = [  # (queue, raw message, what its dead letter's reason says)
        ("tenantq.standard", f"garbage {m}", "not JSON"),
        ("tenantq.interactive", json.dumps(["a list", m]), "a JSON array, not a message object"),
        ("tenantq.batch", json.dumps({"job_id": m, "estimate_tokens": 5}), "properties must be an object"),
        ("tenantq.standard", json.dumps(m), "a JSON string, not a message object"),
        ("tenantq.standard", kombu_message("tenantq.standard", {"m": m}, "abc", body_encoding="base64"),
         "body is not valid base64"),
        # Messages kombu can read but Celery cannot: a body that is no (args, kwargs, embed), no task id.
        ("tenantq.standard", kombu_message("tenantq.standard", {"task": "tenantq.noop", "id": m}, "{}"),
         "the worker could not take it (ValueError"),
        ("tenantq.batch", kombu_message("tenantq.batch", {"task": "no.such.task", "m": m}, "{}"),
         "a Celery task message needs string task and id headers"),
        ("tenantq.interactive", kombu_message("tenantq.interactive", {"task": "tenantq.noop", "id": m,
                                                                      "timelimit": 5}, "[[], {}, {}]"),
         "headers.timelimit must be [soft, hard] seconds"),
        ("tenantq.batch", kombu_message("tenantq.batch", {"task": "tenantq.noop", "id": f"{m}-2"}, "[1, 2]"),
         "the worker could not take it (ValueError"),
    ]
    deep = "[" * 100_000 + "]" * 100_000
    for queue, raw, _ in poison:
        private.q.r.lpush(queue, raw)
    private.q.r.lpush("tenantq.standard", deep)

    def dead() -> list[dict[str, Any]]:
        return private.q.dead_letters(1000)

    wait_for(lambda: len(dead()) == len(poison) + 1, timeout=30)
    assert worker.alive(), worker.log_tail()
    letters = dead()
    for queue, raw, reason in poison:
        [letter] = [d for d in letters if same_message(d["message"], raw)]
        assert letter["reason"].startswith(f"undeliverable message in Celery queue {queue}: {reason}"), letter
        assert "0x" not in letter["reason"]
    [nested] = [d for d in letters if m not in d["message"]]
    assert "not JSON" in nested["reason"] and nested["message"] == deep[:10_000]

    t = private.tenant()
    jobs = [private.noop(t, priority=c) for c in PriorityClass for _ in range(2)]
    runs = private.runs(len(jobs))
    assert sorted(r.job_id for r in runs) == sorted(jobs)
    wait_for(private.idle, timeout=10)
    assert worker.alive() and "Unrecoverable error" not in worker.log_tail(100_000)
    assert all(private.q.r.llen(q) == 0 for q in CLASSES)


def test_poison_read_with_basic_get_is_dead_lettered_and_nothing_is_returned(services: dict[str, str]) -> None:
    from kombu import Connection

    queue, garbage = f"tq-poison-{uuid.uuid4().hex[:8]}", f"garbage {uuid.uuid4().hex}"
    queues = get_queues()
    queues.r.lpush(queue, garbage)
    with Connection(services["REDIS_URL"], transport="workers.transport:Transport") as connection:
        assert connection.default_channel.basic_get(queue) is None
    [letter] = [d for d in queues.dead_letters(10_000) if d["message"] == garbage]
    assert letter["reason"].startswith(f"undeliverable message in Celery queue {queue}: not JSON")
    assert queues.r.llen(queue) == 0


def celery_call(url: str, *options: str) -> str:
    """`celery call` as a person runs it; returns the task id it prints."""
    done = subprocess.run(
        [sys.executable, "-m", "celery", "-A", "workers.app", "call", "tenantq.noop", "--args", "[{}, 1]", *options],
        env={**os.environ, "REDIS_URL": url}, capture_output=True, text=True, timeout=60, check=True,
    )
    return done.stdout.strip().splitlines()[-1]


def test_a_message_published_to_one_class_is_delivered_once_to_that_class_only(private: PrivateFleet) -> None:
    r = private.q.r
    shared = "_kombu.binding.tenantq.standard"
    # What earlier versions left in Redis: every class queue bound to the default exchange and routing key.
    r.sadd(shared, *[f"tenantq.standard\x06\x16\x06\x16{q}" for q in CLASSES])
    worker = private.worker(concurrency=1)
    wait_for(lambda: r.smembers(shared) == {"tenantq.standard\x06\x16\x06\x16tenantq.standard"}, timeout=30)
    worker.stop()  # nobody consumes: each published message stays where routing put it

    sent = {q: celery_call(private.url, "--exchange", q, "--routing-key", q) for q in CLASSES}
    sent["--queue tenantq.batch"] = celery_call(private.url, "--queue", "tenantq.batch")
    found = {q: [json.loads(raw)["headers"]["id"] for raw in r.lrange(q, 0, -1)] for q in CLASSES}
    assert sorted(found["tenantq.interactive"]) == [sent["tenantq.interactive"]]
    assert sorted(found["tenantq.standard"]) == [sent["tenantq.standard"]]
    assert sorted(found["tenantq.batch"]) == sorted([sent["tenantq.batch"], sent["--queue tenantq.batch"]])


# --- the tenant queues --------------------------------------------------------------------------------------


def test_a_message_in_a_tenant_queue_that_is_no_job_is_dead_lettered_with_a_readable_reason(lab: Lab) -> None:
    t = lab.tenant()
    bad = {
        "{this is not json": "undecodable message in tenant queue: not JSON",
        '[{"job_id": "j-in-a-list"}]': "undecodable message in tenant queue: a JSON array, not a job object",
        '"a job"': "undecodable message in tenant queue: a JSON string, not a job object",
        "42": "undecodable message in tenant queue: a JSON number, not a job object",
        '{"job_id": 42}': "undecodable message in tenant queue: job_id must be a non-empty string, not a JSON number",
        '{"job_id": ""}': "undecodable message in tenant queue: job_id must be a non-empty string, not an empty one",
        '{"job_id": null}': "undecodable message in tenant queue: job_id must be a non-empty string, not JSON null",
        '{"kind": "noop"}': "undecodable message in tenant queue: job_id is missing",
    }
    for raw in bad:
        lab.q._run("enqueue", t, STANDARD.value, raw)
    good = lab.job(t)
    lab.worker(concurrency=10)
    admission = lab.admit()
    assert [a.job_id for a in admission.admitted] == [good.job_id]
    assert admission.dead == len(bad)
    reasons = {d["message"]: d["reason"] for d in lab.q.dead_letters()}
    for raw, reason in bad.items():
        assert reasons[raw].startswith(reason), reasons[raw]
        assert "table: 0x" not in reasons[raw]
    assert lab.q.backlog(STANDARD) == 0


def raw_envelope(tenant_id: str, **numbers: str) -> str:
    """A job's envelope as a raw producer might push it, with numbers written as given (1e400, NaN, ...)."""
    envelope = JobEnvelope(job_id=f"j-{uuid.uuid4().hex[:12]}", tenant_id=tenant_id, kind=JobKind.noop,
                           priority=STANDARD, payload={}, enqueued_at=datetime.now(UTC))
    fields = envelope.model_dump(mode="json")
    text = json.dumps({**fields, **{k: f"<{k}>" for k in numbers}})
    for field, number in numbers.items():
        text = text.replace(f'"<{field}>"', number)
    return text


def test_absurd_estimates_pushed_into_a_tenant_queue_are_dead_lettered_and_no_counter_moves(lab: Lab) -> None:
    t = lab.tenant(Plan(monthly_budget_usd=100, monthly_token_budget=10**9, tokens_per_minute=10**9))
    absurd = [
        {"estimate_tokens": "1e300"}, {"estimate_tokens": "1e400"}, {"estimate_tokens": "-5"},
        {"estimate_tokens": "1.5"}, {"estimate_tokens": "NaN"}, {"estimate_tokens": "-Infinity"},
        {"estimate_tokens": '"5"'}, {"estimate_tokens": str(MAX_ESTIMATE_TOKENS + 1)},
        {"estimate_usd": "1e300"}, {"estimate_usd": "-0.01"}, {"estimate_usd": "NaN"},
        {"estimate_usd": "Infinity"}, {"estimate_usd": "1e7"},
    ]
    raws = [raw_envelope(t, **numbers) for numbers in absurd]
    for raw in raws:
        lab.q._run("enqueue", t, STANDARD.value, raw)
    good = lab.job(t, usd=0.25, tokens=1_000)
    lab.worker(concurrency=10)
    admission = lab.admit()
    assert [a.job_id for a in admission.admitted] == [good.job_id]
    assert admission.dead == len(absurd)
    reasons = {d["message"]: d["reason"] for d in lab.q.dead_letters()}
    assert reasons[raws[0]] == ("invalid job in tenant queue: estimate_tokens must be a whole number from 0 to "
                                "1000000000000, not 1e+300")
    assert reasons[raws[6]].endswith("not a JSON string")
    assert reasons[raws[8]] == ("invalid job in tenant queue: estimate_usd must be a number from 0 to 1000000, "
                                "not 1e+300")
    assert all(reasons[raw].startswith("invalid job in tenant queue: estimate_") for raw in raws)

    spend = lab.q.spend(t)
    assert (spend.reserved_tokens, spend.reserved_usd) == (1_000, 0.25)  # the good job's reservation only
    assert lab.q.finish(good.job_id, 1, 0.2, 900)
    spend = lab.q.spend(t)
    assert (spend.reserved_tokens, spend.reserved_usd, spend.tokens, spend.usd) == (0, 0, 900, 0.2)


def test_an_envelope_with_huge_negative_or_non_finite_numbers_is_refused_before_it_reaches_redis(lab: Lab) -> None:
    t = lab.tenant()
    base: dict[str, Any] = {"job_id": "j-bounds", "tenant_id": t, "kind": JobKind.noop, "priority": STANDARD,
                            "payload": {}, "enqueued_at": datetime.now(UTC)}
    for numbers in ({"estimate_tokens": 10**300}, {"estimate_tokens": 1e300}, {"estimate_tokens": -1},
                    {"estimate_tokens": MAX_ESTIMATE_TOKENS + 1}, {"estimate_usd": math.inf},
                    {"estimate_usd": math.nan}, {"estimate_usd": -0.5}, {"estimate_usd": 1e7}, {"attempt": 10**9}):
        with pytest.raises(ValidationError):
            JobEnvelope(**base, **numbers)
    envelope = JobEnvelope(**base)
    with pytest.raises(ValidationError):
        envelope.estimate_tokens = 10**300
    for unchecked in (JobEnvelope.model_construct(**base, estimate_tokens=10**300, estimate_usd=0.0, attempt=1),
                      envelope.model_copy(update={"estimate_usd": math.inf})):
        with pytest.raises(InvalidJob) as refused:
            lab.q.enqueue(unchecked)
        assert "estimate_" in refused.value.message and "not enqueued" in refused.value.message
    assert lab.q.backlog(STANDARD) == 0 and lab.q.r.llen(f"{lab.q.p}:q:{t}:standard") == 0


def test_a_job_whose_estimate_is_beyond_what_one_job_may_reserve_is_refused_with_422(
    api: Any, make_tenant: Any,
) -> None:
    from schemas.agents import AgentSettings, ModelConfig
    from tenancy.registry import register_model

    name = f"absurd-{uuid.uuid4().hex[:8]}"
    register_model(ModelConfig(name=name, model=f"openai/{name}", input_cost_per_token=1e5,
                               output_cost_per_token=1e5))
    tenant_id, key = make_tenant("abs", agent=AgentSettings(model=name, max_tokens=100),
                                 plan=Plan(monthly_budget_usd=10**9))
    chat = {"message": "Is the blue one still available?", "conversation_id": "c-1", "lead_id": "l-1"}
    answer = api.post("/v1/jobs", json={"kind": "chat_draft", "payload": chat},
                      headers={"Authorization": f"Bearer {key}"})
    assert answer.status_code == 422, answer.text
    error = answer.json()["error"]
    assert error["code"] == "invalid_job" and "more than one job may" in error["message"]
    assert get_queues().tenant_state(tenant_id)["backlog"] == {"interactive": 0, "standard": 0, "batch": 0}
