"""What the master health check reports: the master database and Redis, each with its round-trip time, and
the workers alive per class (those whose heartbeat has not expired, with their concurrency)."""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from typing import Any

import redis
from pymongo.errors import PyMongoError

from schemas.jobs import PriorityClass
from tenancy.mongo import master_db
from tenancy.queues import get_queues


def report() -> dict[str, Any]:
    """`status` is ok, degraded (a class has no live worker: its jobs wait) or down (a store is unreachable)."""
    database = _timed(lambda: master_db().command("ping"), PyMongoError)
    broker = _timed(lambda: get_queues().r.ping(), redis.RedisError)
    workers = _workers() if broker["ok"] else {c.value: {"alive": None, "concurrency": None} for c in PriorityClass}
    status = "ok"
    if not (database["ok"] and broker["ok"]):
        status = "down"
    elif any(not w["alive"] for w in workers.values()):
        status = "degraded"
    return {"status": status, "master_database": database, "redis": broker, "workers": workers}


def _timed(check: Callable[[], object], failure: type[Exception]) -> dict[str, Any]:
    started = time.perf_counter()
    try:
        check()
    except failure as error:
        return {"ok": False, "latency_ms": round((time.perf_counter() - started) * 1000, 2),
                "error": type(error).__name__}
    return {"ok": True, "latency_ms": round((time.perf_counter() - started) * 1000, 2)}


def _workers() -> dict[str, dict[str, Any]]:
    queues = get_queues()
    now_ms = int(time.time() * 1000)
    alive = {str(name) for name in queues.r.zrangebyscore(f"{queues.p}:workers", now_ms, "+inf")}
    counts = {c.value: {"alive": 0, "concurrency": 0} for c in PriorityClass}
    for name, raw in queues.r.hgetall(f"{queues.p}:worker:slots").items():
        if name not in alive:
            continue
        slots = json.loads(raw)
        for cls in slots.get("classes", []):
            if cls in counts:
                counts[cls]["alive"] += 1
                counts[cls]["concurrency"] += int(slots.get("concurrency", 0))
    return counts
