"""Live job events: every change of a job's state, published on the job's own Redis pub/sub channel.

The steps that happen in Lua publish there in the same atomic step (queued in enqueue.lua, admitted in
admit.lua, running in claim.lua, the final outcome in finish.lua), so they cost no round trip; the steps of a
run (each model and tool call) are published by the worker as they happen. Every ingress replica subscribes
to the channels of the jobs its clients watch, so updates reach a client whichever replica it is connected
to. Pub/sub keeps nothing: a client that (re)connects reads the job's current state first.

An event: {"job_id", "event", "status", "at" (epoch seconds), "data"}; `event` is queued, admitted, running,
model_call, tool_call, succeeded or failed, and `status` the job's status after it.
"""

from __future__ import annotations

import contextlib
import json
import time
from typing import Any

import redis

from tenancy.queues import get_queues

TERMINAL = frozenset({"succeeded", "failed", "cancelled"})


def channel(prefix: str, job_id: str) -> str:
    return f"{prefix}:events:{job_id}"


def event(job_id: str, name: str, status: str, **data: Any) -> dict[str, Any]:
    return {"job_id": job_id, "event": name, "status": status, "at": time.time(), "data": data}


def publish(job_id: str, name: str, status: str, **data: Any) -> None:
    """Publish one step of a running job; a Redis hiccup never fails the job (the record stays the truth)."""
    queues = get_queues()
    with contextlib.suppress(redis.RedisError):
        queues.r.publish(channel(queues.p, job_id), json.dumps(event(job_id, name, status, **data), default=str))
