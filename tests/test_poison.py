"""Poison never stops a worker: faults injected for real into the Celery queues and the tenant queues.

Raw messages are pushed into the Redis lists a real worker process reads, on a Redis database of the test's
own; then we count what a person cares about: the worker alive, jobs of every class still run, and every bad
message in the dead-letter list with a reason one can act on.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import uuid
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from schemas.jobs import PriorityClass
from tenancy.queues import get_queues
from tenantq.localfleet import LocalFleet, Process
from tests.conftest import private_redis_db, wait_for
from tests.test_admission import PrivateFleet

CLASSES = [f"tenantq.{c.value}" for c in PriorityClass]


@pytest.fixture
def private(fleet: LocalFleet, start_worker: Callable[..., Process]) -> Iterator[PrivateFleet]:
    lab = PrivateFleet(fleet, start_worker, private_redis_db())
    yield lab
    lab.q.r.flushdb()


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
