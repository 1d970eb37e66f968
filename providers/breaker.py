"""Per-model circuit breakers shared by the whole fleet, in Redis.

When a model is down, every worker retrying it on its own multiplies the load on a provider that is already
failing and keeps hundreds of job slots busy with calls that cannot succeed. A circuit counts transient
failures of a model across the fleet; once `LITELLM_BREAKER_FAILURES` calls in a row have failed it opens,
and calls to that model stop at once (the job moves to its fallback, or goes back to its queue) until the
cooldown is over; then one probe call goes through, and its answer closes or reopens the circuit.

The breaker runs on the process's asyncio loop with the model calls (redis.asyncio). It never stands in the
way of a call when Redis itself is unreachable: it then lets every call through.
"""

from __future__ import annotations

import time
from importlib import resources
from typing import Any

import redis
import redis.asyncio

from core.logs import get_logger
from core.settings import Settings

_CLEAN_FOR_S = 1.0
"""A circuit seen closed with no failures is taken as closed for this long, without asking Redis again."""


class CircuitBreaker:
    def __init__(self, client: redis.asyncio.Redis, prefix: str, failures: int, cooldown_s: float,
                 max_cooldown_s: float = 300.0) -> None:
        self._client = client
        self._script = client.register_script(resources.files("providers").joinpath("breaker.lua").read_text())
        self._prefix = prefix
        self._args = [failures, int(cooldown_s * 1000), int(max(max_cooldown_s, cooldown_s) * 1000)]
        self._clean_until: dict[str, float] = {}
        self._log = get_logger()

    async def allow(self, model: str) -> bool:
        """May a call to `model` go out now? False while its circuit is open (or a probe is out)."""
        if time.monotonic() < self._clean_until.get(model, 0.0):
            return True
        answer = await self._ask(model, "allow")
        if answer is None:
            return True
        allowed, state, failures = answer
        if state == "closed" and failures == 0:
            self._clean_until[model] = time.monotonic() + _CLEAN_FOR_S
        return bool(allowed)

    async def record(self, model: str, ok: bool) -> None:
        """Count a call's answer: a success closes the circuit, a transient failure counts towards opening it."""
        if ok and model in self._clean_until:
            return  # nothing to close
        self._clean_until.pop(model, None)
        answer = await self._ask(model, "success" if ok else "failure")
        if answer is not None and answer[1] != "closed":
            self._log.warning("model.circuit_open", model=model, failures=answer[2])

    async def state(self, model: str) -> str:
        """closed, open or half_open (for metrics and tests)."""
        raw = await self._client.hget(self._key(model), "open_until")
        if not raw or int(raw) == 0:
            return "closed"
        return "open" if time.time() * 1000 < int(raw) else "half_open"

    def _key(self, model: str) -> str:
        return f"{self._prefix}:circuit:{model}"

    async def _ask(self, model: str, op: str) -> tuple[int, str, int] | None:
        try:
            answer: list[Any] = await self._script(
                keys=[], args=[self._key(model), op, int(time.time() * 1000), *self._args])
        except redis.RedisError as error:
            self._log.warning("model.circuit_unknown", model=model, error=type(error).__name__)
            return None
        return int(answer[0]), str(answer[1]), int(answer[2])


def fleet_breaker(settings: Settings) -> CircuitBreaker | None:
    """The fleet's breaker over REDIS_URL; None where no Redis is configured (a library user's plain calls)."""
    if not settings.redis.url:
        return None
    client = redis.asyncio.Redis.from_url(settings.redis.url, decode_responses=True, socket_timeout=1.0,
                                          socket_connect_timeout=1.0)
    return CircuitBreaker(client, settings.redis.key_prefix, settings.llm.breaker_failures,
                          settings.llm.breaker_cooldown_s)
