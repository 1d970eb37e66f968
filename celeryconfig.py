"""Celery settings of the tenantq fleet. Read from the one settings object, each with its reason."""

from __future__ import annotations

from kombu.entity import Exchange, Queue

from core.settings import get_settings

_settings = get_settings()

# Redis is both broker and result backend; `tenantq up` sets REDIS_URL to its private server.
broker_url = _settings.redis_url
result_backend = _settings.redis_url
# Model calls are I/O bound: threads let one process hold worker_concurrency calls in flight.
worker_pool = "threads"
worker_concurrency = _settings.fleet.worker_concurrency
# A job is acknowledged only when it ends; a stopping worker hands back the messages it has not started.
task_acks_late = True
task_reject_on_worker_lost = True
# Fairness is decided at admission; a worker reserves no more than it runs, so prefetch cannot undo it.
worker_prefetch_multiplier = 1
# A dead worker's jobs are handed on by their leases (tenancy/queues.py: they expire, the job is admitted
# again). kombu's ack emulation, a Redis copy of each message until its ack, only duplicated that, at two
# round trips per job on the consumer thread, which paced the whole worker: it is off.
broker_transport_options = {"queue_order_strategy": "priority", "ack_emulation": False}
# kombu's Redis transport with a guard where messages are decoded: poison in a Celery queue is dead-lettered
# with its reason instead of stopping the worker (workers/transport.py).
broker_transport = "workers.transport:Transport"
# Payloads are JSON only: no pickle from a shared broker.
task_serializer = "json"
result_serializer = "json"
accept_content = ["json"]
# The shared queues: one per priority class, fed by admission (tenancy/queues.py). A worker without -Q
# serves all three, interactive first; `tenantq worker --classes` narrows it. Each has its own exchange and
# routing key: sharing the default ones delivered a message published there to every class.
task_queues = [Queue(name, Exchange(name, type="direct"), routing_key=name)
               for name in ("tenantq.interactive", "tenantq.standard", "tenantq.batch")]
task_default_queue = "tenantq.standard"
# The tenant database is the source of truth: clients poll job records in MongoDB, so job tasks store no
# Celery result (a write and a publish per job saved). The backend stays for anything that asks for one.
task_ignore_result = True
result_expires = 3600
# Flower and `celery events` see every task.
worker_send_task_events = True
task_send_sent_event = True
# structlog owns log formatting; Celery must not replace the root handlers.
worker_hijack_root_logger = False
worker_redirect_stdouts = False
broker_connection_retry_on_startup = True
timezone = "UTC"
enable_utc = True
