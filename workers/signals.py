"""Worker-wide hooks, each documented once.

- `celeryd_init`: the worker's node name (`worker-1@host`) is shaped like an e-mail address but is no one's:
  it stays readable in the log.
- `setup_logging`: tenantq configures logging (structlog, with redaction) instead of Celery, so every line
  of the worker, Celery's and libraries' own and anything printed included, passes through the same
  redaction (`core/logs.py`).
- `worker_ready`: LiteLLM is imported on a background thread as soon as the worker is up, so the first job
  does not wait seconds for it and `--help` or the ingress never pay for it.
- `worker_ready`: the class queues' bindings to the shared default exchange, left in Redis by earlier
  versions, are dropped, so a message published to one class is delivered once (`workers/transport.py`).
"""

from __future__ import annotations

import logging
import threading
from typing import Any

import redis
from celery.signals import celeryd_init, setup_logging, worker_ready
from kombu.exceptions import OperationalError

from core.logs import configure, get_logger, redact_streams
from core.redaction import keep
from core.settings import get_settings
from workers.transport import drop_shared_bindings


@celeryd_init.connect
def _keep_node_name(sender: Any, **_: Any) -> None:
    if isinstance(sender, str):
        keep(sender)


@setup_logging.connect
def _configure_logging(**_: Any) -> None:
    settings = get_settings().fleet
    logging.basicConfig(level=settings.log_level.upper(), format="%(levelname)s %(name)s: %(message)s")
    configure(settings.log_level, settings.log_json)
    redact_streams()


@worker_ready.connect
def _warm_up(**_: Any) -> None:
    from providers.runtime import litellm_module

    threading.Thread(target=litellm_module, name="tenantq-warm-litellm", daemon=True).start()


@worker_ready.connect
def _drop_shared_bindings(sender: Any, **_: Any) -> None:
    try:
        dropped = drop_shared_bindings(sender.app)
    except (redis.RedisError, OperationalError):  # the next worker to start drops them; admission never used them
        get_logger().warning("worker.shared_bindings_kept", exc_info=True)
        return
    if dropped:
        get_logger().info("worker.shared_bindings_dropped", count=dropped)
