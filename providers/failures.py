"""Translate LiteLLM's exceptions into tenantq's provider errors.

Retries, fallbacks, job failure and the API's error answers all key on four questions: was it a rate
limit, a timeout, an outage (worth another attempt), or a refusal (no attempt will help)? Answering them
here keeps LiteLLM's exception zoo out of every other layer. Messages say what to do, never carry a key,
and carry at most a short, redacted excerpt of the provider's own words.
"""

from __future__ import annotations

import asyncio
import re
from typing import Any

from core.errors import (
    CircuitOpen,
    ProviderError,
    ProviderRateLimited,
    ProviderRejected,
    ProviderTimeout,
    ProviderUnavailable,
)
from core.redaction import redact_text
from schemas.agents import ModelConfig

# LiteLLM reports a key missing on our side as a 500; no retry can fix it, so it is a refusal.
_NO_KEY = re.compile(r"missing credentials|api_key client option must be set|no api key", re.IGNORECASE)


def call_errors() -> tuple[type[BaseException], ...]:
    """The exceptions a model call can raise for reasons outside our code; anything else is a bug."""
    import httpx
    import openai

    return (openai.OpenAIError, httpx.HTTPError, asyncio.TimeoutError, ConnectionError)


def classify(error: BaseException, route: ModelConfig, timeout_s: float) -> ProviderError:
    """The tenantq error for a failed call on `route`."""
    import openai

    status = _status_of(error)
    context: dict[str, Any] = {
        "provider": route.model.split("/", 1)[0] if "/" in route.model else None,
        "model": route.model,
        "route": route.name,
        "status": status,
        "detail": _excerpt(error),
    }
    if isinstance(error, openai.APITimeoutError | asyncio.TimeoutError) or status == 408:
        return ProviderTimeout(
            f"{route.model} did not answer within {timeout_s:g}s: raise the timeout of model config "
            f"'{route.name}' (or LITELLM_REQUEST_TIMEOUT_S), or add a fallback model.", **context)
    if _NO_KEY.search(str(error)):
        return _rejected(401, route, {**context, "status": None})
    if isinstance(error, openai.RateLimitError) or status == 429:
        return ProviderRateLimited(
            f"{route.model} is rate limiting requests (HTTP 429): lower the tenant's requests_per_minute, "
            "raise the provider quota, or add a fallback model.",
            retry_after_s=_retry_after(error), **context)
    if status is None or status >= 500 or isinstance(error, openai.APIConnectionError):
        where = route.api_base or "the provider's default endpoint"
        return ProviderUnavailable(
            f"{route.model} is unavailable ({'HTTP ' + str(status) if status else 'no connection'}): check "
            f"{where} and the provider's status page; a fallback model keeps jobs running.", **context)
    return _rejected(status, route, context)


def circuit_open(route: ModelConfig) -> CircuitOpen:
    return CircuitOpen(
        f"{route.model} is unavailable: it failed for the whole fleet, so its circuit is open and no call was "
        "made; calls resume after a successful probe. Check the provider's status page; a fallback model "
        "keeps jobs running.", provider=route.model.split("/", 1)[0] if "/" in route.model else None,
        model=route.model, route=route.name, circuit="open")


def missing_key(route: ModelConfig) -> ProviderRejected:
    return ProviderRejected(
        f"Model config '{route.name}' takes its API key from ${route.api_key_env}, which is not set in "
        "the worker's environment: set it, or point api_key_env at the variable that holds the key.",
        provider=route.model.split("/", 1)[0], model=route.model, route=route.name)


def unknown_model(model: str) -> ProviderRejected:
    return ProviderRejected(
        f"LiteLLM knows no provider for model {model!r}: write it as provider/model (for example "
        "openai/gpt-4o-mini) in the agent's model or its model config, or register a model config by that "
        "name.", provider=None, model=model)


def _rejected(status: int, route: ModelConfig, context: dict[str, Any]) -> ProviderRejected:
    if status in (401, 403):
        where = (f"${route.api_key_env}" if route.api_key_env
                 else "the provider's key variable (e.g. $OPENAI_API_KEY)")
        hint = f"check the API key in {where} and that it may use this model"
    elif status == 404:
        hint = f"check the model name and api_base of model config '{route.name}'"
    else:
        hint = f"check model config '{route.name}', the prompt size and max_tokens"
    said = f"HTTP {status}" if context.get("status") else "no API key"
    return ProviderRejected(f"{route.model} rejected the request ({said}): {hint}.", **context)


def _status_of(error: BaseException) -> int | None:
    status = getattr(error, "status_code", None)
    if isinstance(status, int) and status > 0:
        return status
    response = getattr(error, "response", None)
    code = getattr(response, "status_code", None)
    return code if isinstance(code, int) and code > 0 else None


def _retry_after(error: BaseException) -> float | None:
    response = getattr(error, "response", None)
    headers = getattr(response, "headers", None)
    value = headers.get("retry-after") if headers is not None else None
    try:
        return float(value) if value is not None else None
    except ValueError:
        return None


def _excerpt(error: BaseException) -> str:
    """The provider's words, redacted before they are cut: a quoted address or key never survives whole."""
    text = " ".join(str(getattr(error, "message", None) or error).split())
    return redact_text(text)[:200]
