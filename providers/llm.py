"""The production model client: LiteLLM, with our own retries and fallbacks.

Retries and fallbacks live here rather than in LiteLLM (num_retries=0, no Router) so that one policy,
read from settings, decides what is transient, how long to back off, and when to move to the next route,
and so that every call is counted in `Usage.attempts`. Transient errors (429, 5xx, timeouts, lost
connections) are retried on the same route; a refusal (401, 400, 404) moves straight to the next one.
"""

from __future__ import annotations

import asyncio
import os
import time
from typing import Any

import structlog
from tenacity import AsyncRetrying, RetryCallState, retry_if_exception, stop_after_attempt
from tenacity.wait import wait_base, wait_random_exponential

from core.errors import CircuitOpen, ProviderError
from core.settings import Settings, get_settings
from providers import failures, pricing
from providers.base import ChatResult, ModelRequest
from providers.breaker import CircuitBreaker, fleet_breaker
from providers.offline import NOTE as OFFLINE_NOTE
from providers.runtime import litellm_module
from schemas.agents import ModelConfig
from schemas.usage import Usage

log = structlog.get_logger(__name__)


class LiteLLMClient:
    """A ModelClient over litellm.acompletion; also serves the offline stand-in (provider "offline")."""

    def __init__(self, settings: Settings | None = None, breaker: CircuitBreaker | None = None) -> None:
        self._settings = settings
        self._breaker = breaker
        self._breaker_built = breaker is not None

    def breaker(self, settings: Settings) -> CircuitBreaker | None:
        if not self._breaker_built:
            self._breaker, self._breaker_built = fleet_breaker(settings), True
        return self._breaker

    async def complete(self, request: ModelRequest) -> ChatResult:
        """The first route that answers. When none does: a refusal if any route refused (waiting will not
        fix it), else the last route's transient error (every route is down: the job may wait)."""
        settings = self._settings or get_settings()
        started = time.perf_counter()
        calls = _Calls()
        errors: list[ProviderError] = []
        for index, route in enumerate(request.routes):
            try:
                response = await self._with_retries(route, request, settings, calls)
            except ProviderError as error:
                errors.append(error)
                log.warning("model_route_failed", provider=error.context.get("provider"), model=route.model,
                            code=error.code, status=error.context.get("status"), attempts=calls.made,
                            circuit=error.context.get("circuit"), fallback_next=index + 1 < len(request.routes),
                            detail=error.context.get("detail"))
                continue
            return _result(response, route, request, fallback_used=index > 0, attempts=calls.made,
                           latency_ms=(time.perf_counter() - started) * 1000)
        refused = [error for error in errors if not error.transient]
        called = [error for error in errors if not isinstance(error, CircuitOpen)]
        chosen = refused[0] if refused else (called or errors)[-1]
        chosen.context.update(attempts=calls.made, routes=[route.model for route in request.routes])
        raise chosen

    async def _with_retries(self, route: ModelConfig, request: ModelRequest, settings: Settings,
                            calls: _Calls) -> Any:
        breaker = None if route.model.startswith("offline/") else self.breaker(settings)
        retrying = AsyncRetrying(
            stop=stop_after_attempt(settings.llm.max_attempts),
            wait=_Backoff(settings.llm.backoff_initial_s, settings.llm.backoff_max_s),
            retry=retry_if_exception(lambda e: isinstance(e, ProviderError) and e.transient
                                     and not isinstance(e, CircuitOpen)),
            before_sleep=_log_retry,
            reraise=True,
        )
        async for attempt in retrying:
            with attempt:
                if breaker is not None and not await breaker.allow(route.model):
                    raise failures.circuit_open(route)
                calls.made += 1
                try:
                    response = await self._call(route, request, settings)
                except ProviderError as error:
                    if breaker is not None and error.transient:
                        await breaker.record(route.model, ok=False)
                    raise
                if breaker is not None:
                    await breaker.record(route.model, ok=True)
                return response
        raise AssertionError("tenacity returned without an outcome")  # pragma: no cover

    async def _call(self, route: ModelConfig, request: ModelRequest, settings: Settings) -> Any:
        litellm = litellm_module()
        offline = pricing.provider_of(route.model) == "offline"  # an unplaceable model is refused here
        timeout = route.timeout_s or request.timeout_s or settings.llm.request_timeout_s
        kwargs: dict[str, Any] = {
            "model": route.model,
            "messages": request.messages,
            "max_tokens": request.max_tokens,
            "temperature": request.temperature,
            "timeout": timeout,
            "num_retries": 0,
            "max_retries": 0,
            "metadata": _metadata_for(offline, request),
        }
        if route.api_base:
            kwargs["api_base"] = route.api_base
        if route.api_key_env:
            key = os.environ.get(route.api_key_env)
            if not key:
                raise failures.missing_key(route)
            kwargs["api_key"] = key
        if request.json_schema is not None:
            kwargs["response_format"] = _response_format(litellm, route, request, offline)
        try:
            # A margin over the HTTP timeout: a stalled stream or DNS lookup must not hold a worker forever.
            async with asyncio.timeout(timeout + 5):
                return await litellm.acompletion(**kwargs)
        except failures.call_errors() as error:
            raise failures.classify(error, route, timeout) from error


class _Calls:
    """Calls made for one request, across retries and routes."""

    def __init__(self) -> None:
        self.made = 0


class _Backoff(wait_base):
    """Exponential backoff with full jitter, but never shorter than the provider's Retry-After."""

    def __init__(self, initial_s: float, max_s: float) -> None:
        self._jitter = wait_random_exponential(multiplier=initial_s, max=max_s)
        self._max_s = max_s

    def __call__(self, retry_state: RetryCallState) -> float:
        wait = float(self._jitter(retry_state))
        error = retry_state.outcome.exception() if retry_state.outcome else None
        retry_after = error.context.get("retry_after_s") if isinstance(error, ProviderError) else None
        return max(wait, min(float(retry_after), self._max_s)) if retry_after else wait


def _log_retry(state: RetryCallState) -> None:
    error = state.outcome.exception() if state.outcome else None
    context = error.context if isinstance(error, ProviderError) else {}
    log.info("model_call_retrying", provider=context.get("provider"), model=context.get("model"),
             status=context.get("status"), attempt=state.attempt_number,
             sleep_s=round(state.upcoming_sleep, 3))


def _metadata_for(offline: bool, request: ModelRequest) -> dict[str, Any]:
    """The offline stand-in writes from the job's context; remote providers get the kind alone."""
    if offline:
        return {**request.metadata, "json_schema": request.json_schema}
    return {"kind": request.metadata.get("kind")}


def _response_format(litellm: Any, route: ModelConfig, request: ModelRequest, offline: bool) -> dict[str, Any]:
    """Structured output where the model supports JSON schemas, JSON mode elsewhere."""
    if offline or litellm.supports_response_schema(model=route.model):
        name = f"tenantq_{request.metadata.get('kind') or 'answer'}"
        return {"type": "json_schema",
                "json_schema": {"name": name, "schema": request.json_schema, "strict": False}}
    return {"type": "json_object"}


def _result(response: Any, route: ModelConfig, request: ModelRequest, *, fallback_used: bool,
            attempts: int, latency_ms: float) -> ChatResult:
    choice = response.choices[0]
    text = choice.message.content or ""
    usage = getattr(response, "usage", None)
    prompt_tokens = int(getattr(usage, "prompt_tokens", 0) or 0)
    completion_tokens = int(getattr(usage, "completion_tokens", 0) or 0)
    if usage is None:  # some self-hosted servers answer without usage: count it ourselves
        prompt_tokens = pricing.count_prompt_tokens(route.model, request.messages)
        completion_tokens = int(litellm_module().token_counter(model=route.model, text=text))
    provider = pricing.provider_of(route.model)
    offline = provider == "offline"
    metadata: dict[str, Any] = {"finish_reason": getattr(choice, "finish_reason", None)}
    if offline:
        metadata.update(offline=True, note=OFFLINE_NOTE)
    return ChatResult(
        text=text,
        usage=Usage(
            prompt_tokens=prompt_tokens,
            completion_tokens=completion_tokens,
            total_tokens=prompt_tokens + completion_tokens,
            cost_usd=pricing.call_cost(route, response, prompt_tokens, completion_tokens),
            model=route.model,
            provider=provider,
            latency_ms=latency_ms,
            attempts=attempts,
            offline=offline,
        ),
        model=route.model,
        fallback_used=fallback_used,
        metadata=metadata,
    )
