"""Worker-wide hooks, each documented once.

- `setup_logging`: tenantq configures logging (structlog, with redaction) instead of Celery, so every line
  of the worker, Celery's own included, passes through the same redaction.
"""

from __future__ import annotations

import logging
from typing import Any

from celery.signals import setup_logging

from tenantq.logs import configure
from tenantq.settings import get_settings


@setup_logging.connect
def _configure_logging(**_: Any) -> None:
    settings = get_settings().fleet
    logging.basicConfig(level=settings.log_level.upper(), format="%(levelname)s %(name)s: %(message)s")
    configure(settings.log_level, settings.log_json)
