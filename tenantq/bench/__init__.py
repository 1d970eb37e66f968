"""Benchmarks that print figures (`tenantq bench NAME`), never timed tests.

Each starts its own local fleet (a private redis-server and nx-27017 in a temporary directory, real worker
processes) so its numbers never mix with a running fleet's, and prints plain Celery beside tenantq in the
same run, on the same machine, with the same pool and concurrency.
"""

from __future__ import annotations

import json
import math
import os
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from tempfile import TemporaryDirectory
from typing import Any

from schemas.jobs import JobEnvelope, JobKind, PriorityClass
from schemas.tenants import Plan, TenantStatus
from tenancy.queues import TenantQueues, get_queues
from tenantq.localfleet import LocalFleet, Process

BENCH_ENV = {"TENANTQ_LOG_LEVEL": "WARNING"}


@contextmanager
def private_fleet() -> Iterator[LocalFleet]:
    """A fleet on its own redis-server and nx-27017: an outside REDIS_URL / MONGODB_URL is never touched,
    because the benchmarks flush their Redis between measurements."""
    for name in ("REDIS_URL", "MONGODB_URL"):
        os.environ.pop(name, None)
    with TemporaryDirectory(prefix="tenantq-bench-") as tmp, LocalFleet(Path(tmp), dict(BENCH_ENV)) as fleet:
        yield fleet


def reset_redis() -> None:
    """Empty the private Redis between measurements (no worker may be running)."""
    get_queues().r.flushdb()


def create_tenants(queues: TenantQueues, count: int, prefix: str) -> list[str]:
    """Tenants straight into Redis with `TenantQueues.sync_tenant` (what admission reads); the registry's
    MongoDB side is skipped because no-op jobs never read it, and 10,000 registry writes would dominate."""
    ids = [f"{prefix}-{i:05d}" for i in range(count)]
    for tenant_id in ids:
        queues.sync_tenant(tenant_id, Plan(), TenantStatus.active)
    return ids


def noop_envelope(tenant_id: str, record_to: str, sleep_ms: float = 0) -> JobEnvelope:
    return JobEnvelope(
        job_id=f"bench-{uuid.uuid4().hex}", tenant_id=tenant_id, kind=JobKind.noop,
        priority=PriorityClass.standard, payload={"sleep_ms": sleep_ms, "record_to": record_to},
        enqueued_at=datetime.now(UTC),
    )


@dataclass(frozen=True)
class Record:
    tenant_id: str
    enqueued_at: float
    started_at: float
    finished_at: float

    @property
    def wait_s(self) -> float:
        return self.started_at - self.enqueued_at


def records(key: str) -> list[Record]:
    raw: list[str] = get_queues().r.lrange(key, 0, -1)  # type: ignore[assignment]  # decode_responses
    parsed: list[dict[str, Any]] = [json.loads(line) for line in raw]
    return [Record(p["tenant_id"], p["enqueued_at"], p["started_at"], p["finished_at"]) for p in parsed]


def wait_records(key: str, count: int, timeout_s: float, process: Process | None = None) -> int:
    """Wait until `count` runs were recorded under `key`; returns how many there are at the end."""
    r = get_queues().r
    deadline = time.monotonic() + timeout_s
    done = 0
    while time.monotonic() < deadline:
        done = int(r.llen(key))
        if done >= count:
            return done
        if process is not None and not process.alive():
            raise RuntimeError(f"{process.name} died:\n{process.log_tail()}")
        time.sleep(0.02)
    return done


def throughput(runs: list[Record], warmup_s: float, window_s: float) -> float:
    """Finishes per second in a window that opens `warmup_s` after the first finish, so that start-up (and
    the worker's background import of LiteLLM) is left out; the window closes early when the jobs ran out."""
    ends = sorted(r.finished_at for r in runs)
    if len(ends) < 2:
        return float("nan")
    opens = ends[0] + warmup_s
    if ends[-1] <= opens:  # all done during warm-up: the whole run is the window
        return (len(ends) - 1) / (ends[-1] - ends[0]) if ends[-1] > ends[0] else float("nan")
    closes = min(opens + window_s, ends[-1])
    inside = [e for e in ends if opens <= e <= closes]
    return (len(inside) - 1) / (inside[-1] - inside[0]) if len(inside) > 1 else float("nan")


def percentile(values: list[float], q: float) -> float:
    """Nearest-rank percentile; q in [0, 100]."""
    if not values:
        return float("nan")
    ordered = sorted(values)
    rank = max(1, min(len(ordered), math.ceil(q / 100 * len(ordered))))
    return ordered[rank - 1]


def table(headers: list[str], rows: list[list[str]]) -> str:
    """A plain-text table: numbers right-aligned, words left-aligned."""
    widths = [max(len(h), *(len(row[i]) for row in rows)) for i, h in enumerate(headers)]
    numeric = [all(_is_number(row[i]) for row in rows) for i in range(len(headers))]

    def line(cells: list[str]) -> str:
        return "  ".join(c.rjust(w) if n else c.ljust(w) for c, w, n in zip(cells, widths, numeric, strict=True))

    return "\n".join([line(headers), "  ".join("-" * w for w in widths), *(line(row) for row in rows)])


def _is_number(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return text == "-"
    return True
