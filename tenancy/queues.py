"""Per-tenant queues in Redis, and the admission step that feeds the shared Celery queues fairly.

Each tenant's jobs wait in their own list per priority class, in arrival order. A ring per class holds the
tenants that have work and may be served. Admission (one Lua script, atomic) takes the next job of the next
tenant in the ring, round robin with a weight per tenant, within the live worker capacity of the class, the
fleet cap, the tenant's cap, budget and rate limits, and grants it a lease (its slot). Only admitted jobs
become Celery messages, so the shared Celery queues stay as shallow as the fleet is wide and prefetch cannot
undo fairness. Every step costs the same whatever the number of tenants.

A lease expires unless its worker renews it, so a killed worker leaks no slot: the reaper hands the job on.
"""

from __future__ import annotations

import json
import math
import time
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import cache
from importlib import resources
from typing import Any

import redis
from pydantic import ValidationError

from core.errors import EnqueueFailed, InvalidJob, TenantSuspended, UnknownTenant
from schemas.jobs import MAX_ESTIMATE_TOKENS, MAX_ESTIMATE_USD, JobEnvelope, PriorityClass
from schemas.tenants import Plan, TenantStatus

MICRO = 1_000_000


@cache
def _script_source(name: str) -> str:
    lua = resources.files("tenancy.lua")
    return lua.joinpath("common.lua").read_text() + "\n" + lua.joinpath(f"{name}.lua").read_text()


def month_key(at: datetime | None = None) -> str:
    return (at or datetime.now(UTC)).strftime("%Y%m")


@dataclass(frozen=True)
class CeleryRoute:
    """Where admission publishes: the shared Celery queue of a class is `queue_prefix + class`, and a job of
    kind k runs as task `task_of_kind.get(k, default_task)`. The workers layer names them, not this one."""

    queue_prefix: str
    task_of_kind: dict[str, str]
    default_task: str


@dataclass(frozen=True)
class Admitted:
    job_id: str
    attempt: int
    envelope: str


@dataclass(frozen=True)
class Rejected:
    job_id: str
    reason: str
    envelope: str


@dataclass(frozen=True)
class Admission:
    admitted: list[Admitted]
    rejected: list[Rejected]
    dead: int


@dataclass(frozen=True)
class Claim:
    kept: str | None
    """An earlier delivery's finished run (a JobOutcome as JSON) that was never recorded, if any."""


@dataclass(frozen=True)
class Reaped:
    requeued: int
    exhausted: list[str]


@dataclass(frozen=True)
class Spend:
    usd: float
    tokens: int
    reserved_usd: float
    reserved_tokens: int
    jobs: int


def _booked(cost_usd: float, tokens: int) -> tuple[int, int]:
    """A job's real spend as the Lua scripts book it, in millionths of a dollar and tokens, each within what
    one job may reserve, so no counter can overflow (a non-finite cost books the most a job may)."""
    usd = cost_usd if math.isfinite(cost_usd) else MAX_ESTIMATE_USD
    return round(min(max(usd, 0.0), MAX_ESTIMATE_USD) * MICRO), min(max(int(tokens), 0), MAX_ESTIMATE_TOKENS)


def _triples(flat: list[Any]) -> list[tuple[Any, Any, Any]]:
    return [(flat[i], flat[i + 1], flat[i + 2]) for i in range(0, len(flat), 3)]


class TenantQueues:
    """The queue layer over one Redis. Cheap to create; scripts are loaded once per client."""

    def __init__(self, client: redis.Redis, prefix: str = "tq") -> None:
        self.r = client
        self.p = prefix
        self._scripts = {
            name: client.register_script(_script_source(name))
            for name in ("enqueue", "admit", "claim", "renew", "finish", "reap", "ring", "hand_back", "settle")
        }

    def _run(self, name: str, *args: Any) -> Any:
        return self._scripts[name](keys=[], args=[self.p, *args])

    # --- tenants -----------------------------------------------------------------------------------------

    def sync_tenant(self, tenant_id: str, plan: Plan, status: TenantStatus, default_cap: int = 0) -> None:
        """Mirror a tenant's plan into Redis, where admission reads it, and ring it if it has work.

        The plan is brought within its bounds first: one built without validation (or stored before plans
        were bounded) must neither fail here, halfway, nor put a number into Redis that a counter cannot
        be compared with."""
        plan, _ = Plan.clamped(plan.model_dump())
        budget_usd = -1 if plan.monthly_budget_usd is None else round(plan.monthly_budget_usd * MICRO)
        key = f"{self.p}:tenant:{tenant_id}"
        self.r.hset(key, mapping={
            "status": status.value,
            "weight": plan.weight,
            "cap": plan.max_in_flight or default_cap,
            "budget_usd": budget_usd,
            "budget_tokens": -1 if plan.monthly_token_budget is None else plan.monthly_token_budget,
            "rpm": plan.requests_per_minute or -1,
            "tpm": plan.tokens_per_minute or -1,
        })
        self.r.sadd(f"{self.p}:tenants", tenant_id)
        self._run("ring", tenant_id)

    def has_tenant(self, tenant_id: str) -> bool:
        return bool(self.r.exists(f"{self.p}:tenant:{tenant_id}"))

    # --- producers ---------------------------------------------------------------------------------------

    def enqueue(self, envelope: JobEnvelope) -> int:
        """Append a job to its tenant's queue; returns the depth of that queue.

        The text is checked as admission will read it, since an envelope built without validation
        (`model_construct`, `model_copy(update=...)`) could carry numbers no Redis counter may take."""
        text = envelope.model_dump_json()
        try:
            JobEnvelope.model_validate_json(text)
        except ValidationError as exc:
            fields = exc.errors(include_url=False, include_context=False, include_input=False)
            names = ", ".join(sorted({".".join(map(str, f["loc"])) for f in fields}))
            raise InvalidJob(f"The job was not enqueued: {names} out of bounds or invalid; fix what built it.",
                             tenant_id=envelope.tenant_id, job_id=envelope.job_id, fields=fields) from exc
        try:
            depth: int = self._run("enqueue", envelope.tenant_id, envelope.priority.value, text)
        except redis.ResponseError as exc:
            if "UNKNOWN_TENANT" in str(exc):
                raise UnknownTenant("Tenant has no queue yet.", tenant_id=envelope.tenant_id) from exc
            if "TENANT_SUSPENDED" in str(exc):
                raise TenantSuspended("Tenant is suspended; resume it to enqueue jobs.",
                                      tenant_id=envelope.tenant_id) from exc
            raise EnqueueFailed(f"Redis refused the job: {exc}", job_id=envelope.job_id) from exc
        except redis.RedisError as exc:
            raise EnqueueFailed(f"Redis is unreachable: {exc}. Retry the request.", job_id=envelope.job_id) from exc
        return depth

    # --- admission (the workers' dispatchers) --------------------------------------------------------------

    def admit(
        self, priority: PriorityClass | Sequence[PriorityClass], *, lease_ttl_s: float, batch: int, fleet_cap: int,
        max_steps: int = 0, route: CeleryRoute | None = None,
    ) -> Admission:
        """Admit up to `batch` next jobs fairly: of one class, or of several served in the order given, in one
        round trip. With a `route`, each admitted job is published to its class's Celery queue in the same
        atomic step; without one, publishing is the caller's."""
        classes = [priority] if isinstance(priority, PriorityClass) else list(priority)
        now = datetime.now(UTC)
        celery = ["", "{}", ""]
        if route is not None:
            celery = [route.queue_prefix, json.dumps(route.task_of_kind), route.default_task]
        result = self._run(
            "admit", ",".join(c.value for c in classes), int(now.timestamp() * 1000), int(lease_ttl_s * 1000),
            batch, month_key(now), now.strftime("%Y%m%d%H%M"), fleet_cap, max_steps or batch * 4 + 16, *celery,
            MAX_ESTIMATE_TOKENS, MAX_ESTIMATE_USD,
        )
        admitted = [Admitted(j, int(a), e) for j, a, e in _triples(result[0])]
        rejected = [Rejected(j, r, e) for j, r, e in _triples(result[1])]
        return Admission(admitted, rejected, int(result[2]))

    def claim(self, job_id: str, attempt: int, lease_ttl_s: float) -> Claim | None:
        """Claim this delivery's lease; None for a stale delivery (the lease expired and was handed on)."""
        answer = self._run("claim", job_id, attempt, int((time.time() + lease_ttl_s) * 1000))
        if not answer:
            return None
        return Claim(kept=answer[1] or None)

    def keep(self, job_id: str, outcome: str) -> None:
        """Keep a finished run's outcome beside the job's lease until it is recorded (`finish` drops it)."""
        self.r.hset(f"{self.p}:kept", job_id, outcome)

    def renew(self, job_ids: list[str], lease_ttl_s: float) -> int:
        if not job_ids:
            return 0
        return int(self._run("renew", int((time.time() + lease_ttl_s) * 1000), *job_ids))

    def finish(self, job_id: str, attempt: int, cost_usd: float, tokens: int, event: str = "") -> bool:
        """Give the slot back and book the spend, once; `event` (JSON) is published on the job's channel."""
        return bool(self._run("finish", job_id, attempt, *_booked(cost_usd, tokens), event))

    def hand_back(self, job_id: str, attempt: int, delay_s: float) -> bool:
        """Give the slot back and queue the job again after `delay_s`; False when the lease was not ours."""
        return bool(self._run("hand_back", job_id, attempt, int((time.time() + delay_s) * 1000)))

    def failing(self, limit: int = 50) -> list[str]:
        """Entries of jobs to fail (refused at admission, out of attempts), oldest first, as stored."""
        return [str(entry) for entry in self.r.lrange(f"{self.p}:failing", 0, limit - 1)]

    def settle(self, entry: str, cost_usd: float = 0.0, tokens: int = 0) -> bool:
        """Remove an entry of `failing` once its job's end is recorded, booking the spend of a job that had
        in fact ended uncharged, in one step; False when another dispatcher settled it first."""
        month = str(json.loads(entry).get("month") or month_key())
        return bool(self._run("settle", entry, *_booked(cost_usd, tokens), month))

    def reap(self, max_attempts: int, limit: int = 100) -> Reaped:
        requeued, exhausted = self._run("reap", int(time.time() * 1000), max_attempts, limit)
        return Reaped(int(requeued), list(exhausted))

    def wait_for_work(self, timeout_s: float) -> None:
        self.r.blpop([f"{self.p}:wake"], timeout=timeout_s)

    # --- the fleet's capacity --------------------------------------------------------------------------------

    def register_worker(self, name: str, classes: list[PriorityClass], concurrency: int, ttl_s: float) -> None:
        slots = json.dumps({"classes": [c.value for c in classes], "concurrency": concurrency})
        pipe = self.r.pipeline()
        pipe.hset(f"{self.p}:worker:slots", name, slots)
        pipe.zadd(f"{self.p}:workers", {name: int((time.time() + ttl_s) * 1000)})
        pipe.execute()

    def deregister_worker(self, name: str) -> None:
        pipe = self.r.pipeline()
        pipe.hdel(f"{self.p}:worker:slots", name)
        pipe.zrem(f"{self.p}:workers", name)
        pipe.execute()

    # --- visibility ---------------------------------------------------------------------------------------------

    def backlog(self, priority: PriorityClass) -> int:
        """Jobs waiting for admission in one class: the one key an autoscaler reads."""
        return int(self.r.get(f"{self.p}:backlog:{priority.value}") or 0)

    def in_flight(self, priority: PriorityClass) -> int:
        return int(self.r.get(f"{self.p}:inflight:{priority.value}") or 0)

    def spend(self, tenant_id: str, month: str | None = None) -> Spend:
        h = self.r.hgetall(f"{self.p}:spend:{tenant_id}:{month or month_key()}")
        return Spend(
            usd=int(h.get("usd", 0)) / MICRO, tokens=int(h.get("tokens", 0)),
            reserved_usd=int(h.get("reserved_usd", 0)) / MICRO, reserved_tokens=int(h.get("reserved_tokens", 0)),
            jobs=int(h.get("jobs", 0)),
        )

    def tenant_state(self, tenant_id: str) -> dict[str, Any]:
        return self.tenant_states([tenant_id])[0]

    def tenant_states(self, tenant_ids: list[str], chunk: int = 500) -> list[dict[str, Any]]:
        """Backlog per class, oldest waiting job's age, jobs in flight and this month's spend of each
        tenant: one pipelined round trip per `chunk` tenants, so the report stays quick at 10,000."""
        states: list[dict[str, Any]] = []
        month, now = month_key(), datetime.now(UTC)
        for start in range(0, len(tenant_ids), chunk):
            ids = tenant_ids[start:start + chunk]
            pipe = self.r.pipeline(transaction=False)
            for t in ids:
                for c in PriorityClass:
                    pipe.llen(f"{self.p}:q:{t}:{c.value}")
                    pipe.lindex(f"{self.p}:q:{t}:{c.value}", 0)
                pipe.hget(f"{self.p}:tenant:{t}", "inflight")
                pipe.hmget(f"{self.p}:spend:{t}:{month}", ["usd", "tokens"])
            replies = pipe.execute()
            width = 2 * len(PriorityClass) + 2
            for i, t in enumerate(ids):
                states.append(_state(t, replies[i * width:(i + 1) * width], now))
        return states

    def tenants(self) -> list[str]:
        return sorted(str(t) for t in self.r.smembers(f"{self.p}:tenants"))

    def dead_letters(self, limit: int = 100) -> list[dict[str, Any]]:
        return [json.loads(raw) for raw in self.r.lrange(f"{self.p}:dead", 0, limit - 1)]

    def dead_letter_count(self) -> int:
        return int(self.r.llen(f"{self.p}:dead"))

    def dead_letter(self, reason: str, tenant_id: str | None, message: str) -> None:
        entry = {"tenant": tenant_id, "reason": reason, "message": message, "at": int(time.time() * 1000)}
        self.r.rpush(f"{self.p}:dead", json.dumps(entry))


def _state(tenant_id: str, replies: list[Any], now: datetime) -> dict[str, Any]:
    classes = list(PriorityClass)
    heads = [replies[2 * i + 1] for i in range(len(classes)) if replies[2 * i + 1]]
    oldest = min((_enqueued_at(h) for h in heads), default=None)
    usd, tokens = replies[-1]
    return {
        "tenant_id": tenant_id,
        "backlog": {c.value: int(replies[2 * i]) for i, c in enumerate(classes)},
        "oldest_age_s": round((now - oldest).total_seconds(), 3) if oldest else None,
        "in_flight": int(replies[-2] or 0),
        "spend_usd": int(usd or 0) / MICRO,
        "spend_tokens": int(tokens or 0),
    }


def _enqueued_at(raw: str) -> datetime:
    """When a queued envelope was enqueued; an undecodable one counts as now (admission dead-letters it)."""
    try:
        return datetime.fromisoformat(json.loads(raw)["enqueued_at"])
    except (ValueError, KeyError, TypeError):
        return datetime.now(UTC)


_queues: dict[int, TenantQueues] = {}


def get_queues() -> TenantQueues:
    """The process's queue layer over REDIS_URL (one connection pool per process)."""
    import os

    from core.settings import get_settings

    pid = os.getpid()
    if pid not in _queues:
        _queues.clear()
        settings = get_settings()
        client = redis.Redis.from_url(settings.redis_url, decode_responses=True, health_check_interval=30)
        _queues[pid] = TenantQueues(client, settings.redis.key_prefix)
    return _queues[pid]


def reset_queues() -> None:
    _queues.clear()
