"""The jobs this process is running, whose leases its dispatcher renews."""

from __future__ import annotations

import threading

_lock = threading.Lock()
_running: set[str] = set()


def hold(job_id: str) -> None:
    with _lock:
        _running.add(job_id)


def drop(job_id: str) -> None:
    with _lock:
        _running.discard(job_id)


def held() -> list[str]:
    with _lock:
        return list(_running)
