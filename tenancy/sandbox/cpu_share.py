"""Each tenant's share of a process's CPU for rendering its templates.

A render's own CPU limit bounds one job; this bounds a tenant. The renders of one tenant in one process draw
on a bucket that refills at TENANTQ_TEMPLATE_CPU_SHARE CPU-seconds per second and holds up to one render's
limit, so an ordinary prompt (a few milliseconds) never waits, while a tenant whose templates keep a core busy
is paused, sleeping and so without the GIL, until its share has refilled: its jobs slow down, the others'
do not. Where waiting is worse than not knowing (the ingress's estimate), the render stops instead.
"""

from __future__ import annotations

import threading
import time

PRUNE_AT = 4_096
"""Tenants tracked before those with a full bucket are forgotten."""


class CpuShares:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._buckets: dict[str, tuple[float, float]] = {}  # tenant -> (CPU seconds left, when)

    def spend(self, owner: str, cpu_seconds: float, rate: float, burst: float) -> float:
        """Charge `cpu_seconds` to `owner`; the seconds it should pause before computing on (0: none)."""
        now = time.monotonic()
        with self._lock:
            left, at = self._buckets.get(owner, (burst, now))
            left = min(burst, left + (now - at) * rate) - cpu_seconds
            self._buckets[owner] = (left, now)
            if len(self._buckets) > PRUNE_AT:
                self._buckets = {k: (v, t) for k, (v, t) in self._buckets.items() if v + (now - t) * rate < burst}
        return 0.0 if left >= 0 else -left / rate

    def clear(self) -> None:
        with self._lock:
            self._buckets.clear()


SHARES = CpuShares()
