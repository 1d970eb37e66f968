"""Plain Celery, the baseline of the benchmarks: one no-op task, N queues, every worker consumes all of them.

Its settings mirror `celeryconfig` (threads pool, late acks, prefetch 1, no ack emulation, no stored results,
task events),
so the only difference measured is how work reaches the worker. The benchmark starts
`celery -A tenantq.bench.plain_celery worker` with PLAIN_CELERY_BROKER_URL and PLAIN_CELERY_QUEUES_FILE (one
queue name a line: 10,000 names do not fit a command line comfortably); the worker consumes every queue in it.
"""

from __future__ import annotations

import json
import os
import time
from functools import cache
from pathlib import Path
from typing import Any

import redis
from celery import Celery
from kombu.entity import Queue


class PlainConfig:
    """Read by Celery when it first needs a setting, so importing this module reads no environment."""

    worker_pool = "threads"
    task_acks_late = True
    task_reject_on_worker_lost = True
    worker_prefetch_multiplier = 1
    broker_transport_options = {"queue_order_strategy": "priority", "ack_emulation": False}
    task_ignore_result = True
    task_serializer = "json"
    result_serializer = "json"
    accept_content = ["json"]
    result_expires = 3600
    worker_send_task_events = True
    task_send_sent_event = True
    worker_hijack_root_logger = False
    broker_connection_retry_on_startup = True

    @property
    def broker_url(self) -> str:
        return os.environ["PLAIN_CELERY_BROKER_URL"]

    @property
    def result_backend(self) -> str:
        return os.environ["PLAIN_CELERY_BROKER_URL"]

    @property
    def task_queues(self) -> list[Queue]:
        return [Queue(name) for name in queue_names()]  # type: ignore[no-untyped-call]  # kombu is untyped

    @property
    def task_default_queue(self) -> str:
        return queue_names()[0]


@cache
def queue_names() -> list[str]:
    path = os.environ.get("PLAIN_CELERY_QUEUES_FILE")
    names = Path(path).read_text().split() if path else []
    return names or ["plain-q00000"]


@cache
def _redis() -> redis.Redis:
    return redis.Redis.from_url(os.environ["PLAIN_CELERY_BROKER_URL"], decode_responses=True)


app = Celery("plain-bench")
app.config_from_object(PlainConfig())


@app.task(name="plain.noop")  # type: ignore[untyped-decorator]  # Celery is untyped
def noop(record_to: str, tenant_id: str, enqueued_at: float, sleep_ms: float = 0) -> None:
    """The same work as `tenantq.noop`: sleep, then append the timings to a Redis list."""
    started = time.time()
    time.sleep(sleep_ms / 1000)
    record: dict[str, Any] = {"tenant_id": tenant_id, "enqueued_at": enqueued_at, "started_at": started,
                              "finished_at": time.time()}
    _redis().rpush(record_to, json.dumps(record))


def producer(broker_url: str) -> Celery:
    """An app that only publishes `plain.noop` messages, for the benchmark process itself."""
    sender = Celery("plain-bench-producer", broker=broker_url)
    sender.conf.update(task_serializer="json", accept_content=["json"],
                       broker_transport_options=PlainConfig.broker_transport_options)
    return sender
