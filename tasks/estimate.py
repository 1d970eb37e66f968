"""What a job may spend, reserved against its tenant's budget at admission and reconciled when it ends.

The estimate is the rendered prompt's tokens plus the completion allowance, at the primary model's price,
so the real spend of a job stays at or below what was reserved for it.

Prompts render here with the same limits as in a worker but a shorter CPU time
(TENANTQ_TEMPLATE_ESTIMATE_TIMEOUT_S), since the ingress serves every tenant from one process. A template
that breaks a limit is refused (TemplateError, 422 at the ingress), as the worker would fail its job; one that
only runs out of time, or of its tenant's CPU share, is counted at its largest (TENANTQ_TEMPLATE_MAX_RENDER_CHARS)
and the worker, with its longer limit, decides. A prompt's render depends only on its source and the agent's
fields, so each outcome is kept for a minute: a tenant posting job after job renders its prompt once.
"""

from __future__ import annotations

import json
import threading
from dataclasses import dataclass
from typing import Any

from cachetools import TTLCache

from core.errors import TemplateError, TemplateTimeout
from core.logs import get_logger
from core.settings import get_settings
from providers.base import ModelRequest
from providers.pricing import estimate as price
from providers.pricing import price as price_of
from schemas.jobs import JobEnvelope, JobKind
from tasks.context import JobContext
from tasks.kinds import kind_of
from tenancy.jobs import now
from tenancy.registry import agent_config

ERP_ALLOWANCE = 4  # an ERP report's prompt carries its findings: allow several completions' worth
CHARS_PER_TOKEN = 4
RENDERS_KEPT_CHARS = 4_000_000
"""Characters of rendered prompts kept per process for estimates."""


@dataclass(frozen=True)
class _Outcome:
    text: str | None = None  # None: the render ran out of time (counted at its largest)
    error: tuple[type[TemplateError], str, dict[str, Any]] | None = None


_outcomes: TTLCache[tuple[str, str], _Outcome] | None = None
_outcomes_lock = threading.Lock()


def _kept() -> TTLCache[tuple[str, str], _Outcome]:
    global _outcomes
    if _outcomes is None:
        _outcomes = TTLCache(maxsize=RENDERS_KEPT_CHARS, ttl=get_settings().fleet.agent_cache_ttl_s,
                             getsizeof=lambda outcome: len(outcome.text or "") + 200)
    return _outcomes


@dataclass
class _Estimating(JobContext):
    """A job context whose prompts render once a minute at most, and count as their largest where they run out
    of the estimate's CPU time."""

    estimating: bool = True
    unrendered: int = 0

    def render(self, kind: str, **variables: Any) -> str:
        source = self.agent.prompt_sources.get(kind)
        if source is None:
            return ""
        key = (source, json.dumps({**self.prompt_variables(), **variables}, sort_keys=True, default=str))
        with _outcomes_lock:
            outcome = _kept().get(key)
        if outcome is None:
            outcome = self._render(kind, variables)
            with _outcomes_lock:
                if outcome.error is not None or len(outcome.text or "") < RENDERS_KEPT_CHARS // 4:
                    _kept()[key] = outcome
        if outcome.error is not None:
            error, message, context = outcome.error
            raise error(message, **context)
        if outcome.text is None:
            self.unrendered += 1
            return ""
        return outcome.text

    def _render(self, kind: str, variables: dict[str, Any]) -> _Outcome:
        try:
            return _Outcome(text=super().render(kind, **variables))
        except TemplateTimeout as exc:
            self.log.info("estimate.prompt_timed_out", template=kind, reason=exc.message)
            return _Outcome()
        except TemplateError as exc:
            return _Outcome(error=(type(exc), exc.message, exc.context))


def estimate(tenant_id: str, kind: JobKind, payload: dict[str, Any], instance_id: str | None = None,
             variables: dict[str, Any] | None = None) -> tuple[int, float]:
    agent = agent_config(tenant_id, instance_id)
    envelope = JobEnvelope(job_id="estimate", tenant_id=tenant_id, kind=kind, priority="standard",
                           payload=payload, enqueued_at=now(), instance_id=instance_id, variables=variables or {})
    ctx = _Estimating(envelope, agent, get_logger(tenant_id=tenant_id))
    spec = kind_of(kind)
    parsed = spec.payload.model_validate(payload)
    if spec.messages is not None:
        messages = spec.messages(ctx, parsed)
    else:
        messages = [{"role": "system", "content": ctx.render(kind.value)},
                    {"role": "user", "content": json.dumps(payload)}]
    allowance = agent.max_tokens * (ERP_ALLOWANCE if kind is JobKind.erp_analysis else 1)
    request = ModelRequest(messages=messages, routes=agent.models, max_tokens=allowance,
                           temperature=agent.temperature)
    tokens, usd = price(request)
    if ctx.unrendered:
        largest = ctx.unrendered * get_settings().template.max_render_chars // CHARS_PER_TOKEN
        tokens, usd = tokens + largest, usd + price_of(agent.models[0], largest, 0)
    return tokens, usd
