"""The Celery app: `celery -A workers.app worker` runs a tenantq worker as Celery users expect.

Settings come from `celeryconfig` (itself read from the one settings object) only when Celery first needs
them, so importing this module reads no environment.
"""

from __future__ import annotations

from celery import Celery

from schemas.jobs import PriorityClass

QUEUE_PREFIX = "tenantq."


def queue_name(priority: PriorityClass) -> str:
    return QUEUE_PREFIX + priority.value


app = Celery("tenantq", include=["workers.tasks"])
app.config_from_object("celeryconfig")

from workers import signals  # noqa: E402,F401  (wires the worker hooks)
from workers.dispatcher import DispatcherStep  # noqa: E402

app.steps["worker"].add(DispatcherStep)
