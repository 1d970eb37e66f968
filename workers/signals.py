"""Worker-wide hooks, each documented once.

- `setup_logging`: tenantq configures logging (structlog, with redaction) instead of Celery, so every line
  of the worker, Celery's own included, passes through the same redaction.
- `worker_ready`: LiteLLM is imported on a background thread as soon as the worker is up, so the first job
  does not wait seconds for it and `--help` or the ingress never pay for it.
"""

from __future__ import annotations

import logging
import threading
from typing import Any

from celery.signals import setup_logging, worker_ready

from tenantq.logs import configure
from tenantq.settings import get_settings


@setup_logging.connect
def _configure_logging(**_: Any) -> None:
    settings = get_settings().fleet
    logging.basicConfig(level=settings.log_level.upper(), format="%(levelname)s %(name)s: %(message)s")
    configure(settings.log_level, settings.log_json)


@worker_ready.connect
def _warm_up(**_: Any) -> None:
    from providers.runtime import litellm_module

    threading.Thread(target=litellm_module, name="tenantq-warm-litellm", daemon=True).start()
