"""Prices of model calls: the estimate reserved at admission and the cost booked after the call.

Both read LiteLLM's bundled price map, so the reservation and the booking agree; a route's own prices
(`ModelConfig.input_cost_per_token` / `output_cost_per_token`) win over the map for negotiated or
self-hosted models. Unknown models and the offline stand-in cost 0: a missing price never blocks a job.
"""

from __future__ import annotations

import json
import os
from functools import lru_cache
from typing import Any

import structlog

from core.errors import ProviderRejected
from core.settings import Settings
from providers import failures
from providers.base import ModelRequest
from providers.offline import MODEL as OFFLINE_MODEL
from providers.runtime import litellm_module
from schemas.agents import ModelConfig

log = structlog.get_logger(__name__)


def default_model(settings: Settings) -> str:
    """LITELLM_DEFAULT_MODEL, else OpenAI's small model when a key is set, else the offline stand-in."""
    if settings.llm.default_model:
        return settings.llm.default_model
    if os.environ.get("OPENAI_API_KEY"):
        return "openai/gpt-4o-mini"
    return OFFLINE_MODEL


def provider_of(model: str) -> str:
    """The LiteLLM provider prefix of a model string (openai, anthropic, offline, ...); a model LiteLLM
    cannot place raises ProviderRejected naming it, since no attempt or route can make it callable."""
    if "/" in model:
        return model.split("/", 1)[0]
    return _bare_provider(model)


@lru_cache(maxsize=1024)
def _bare_provider(model: str) -> str:
    litellm = litellm_module()
    try:
        _, provider, _, _ = litellm.get_llm_provider(model)
    except litellm.exceptions.BadRequestError as error:
        raise failures.unknown_model(model) from error
    return str(provider)


def estimate(request: ModelRequest) -> tuple[int, float]:
    """Tokens and USD to reserve for a `ModelRequest`: its prompt plus the whole completion allowance,
    priced at the primary route."""
    route = request.routes[0]
    prompt_tokens = count_prompt_tokens(route.model, request.messages)
    return prompt_tokens + request.max_tokens, price(route, prompt_tokens, request.max_tokens)


def count_prompt_tokens(model: str, messages: list[dict[str, Any]]) -> int:
    try:
        return int(litellm_module().token_counter(model=model, messages=messages,
                                                  use_default_image_token_count=True))
    except (TypeError, ValueError, KeyError) as error:
        # Odd message shapes must not block admission: fall back to ~4 characters per token.
        log.warning("token_count_approximated", model=model, error=type(error).__name__)
        return max(1, len(json.dumps(messages, default=str)) // 4)


def price(route: ModelConfig, prompt_tokens: int, completion_tokens: int) -> float:
    """USD of a call of this size on this route."""
    input_price, output_price = unit_prices(route)
    return prompt_tokens * input_price + completion_tokens * output_price


def unit_prices(route: ModelConfig) -> tuple[float, float]:
    """USD per input token and per output token: the route's own, else LiteLLM's map, else 0."""
    input_price, output_price = route.input_cost_per_token, route.output_cost_per_token
    if input_price is None or output_price is None:
        mapped_in, mapped_out = _mapped_unit_prices(route.model)
        input_price = mapped_in if input_price is None else input_price
        output_price = mapped_out if output_price is None else output_price
    return input_price, output_price


def call_cost(route: ModelConfig, response: Any, prompt_tokens: int, completion_tokens: int) -> float:
    """USD of a finished call: LiteLLM's completion_cost (cache and tier aware) unless the route sets
    its own prices."""
    if provider_of(route.model) == "offline":
        return 0.0
    if route.input_cost_per_token is not None or route.output_cost_per_token is not None:
        return price(route, prompt_tokens, completion_tokens)
    if route.model in _unmapped:
        return 0.0
    litellm = litellm_module()
    try:
        return float(litellm.completion_cost(completion_response=response, model=route.model))
    except litellm.exceptions.ModelNotMappedError:
        _unmapped.add(route.model)
        return 0.0


_unmapped: set[str] = set()
"""Models missing from LiteLLM's price map. Finding that out costs LiteLLM a slow search of every alias on
each call; the bundled map does not change while the process runs, so the answer is kept."""


def _mapped_unit_prices(model: str) -> tuple[float, float]:
    try:
        if model in _unmapped or provider_of(model) == "offline":
            return 0.0, 0.0
    except ProviderRejected:  # priced as unknown; the call itself is refused, naming the model
        return 0.0, 0.0
    litellm = litellm_module()
    try:
        prompt_cost, completion_cost = litellm.cost_per_token(model=model, prompt_tokens=1,
                                                              completion_tokens=1)
    except litellm.exceptions.ModelNotMappedError:
        _unmapped.add(model)
        return 0.0, 0.0
    return float(prompt_cost), float(completion_cost)
