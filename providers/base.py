"""The contract between tasks and model providers: a request in, a text and its usage out.

Tasks build a `ModelRequest` and never see LiteLLM, retries or fallbacks; swapping the client (LiteLLM,
a test double) changes nothing above this line. Celery runs jobs on threads, so `complete()` hands the call
to the process's asyncio loop (core.aio), where hundreds of calls share one HTTP connection pool.
"""

from __future__ import annotations

import threading
from typing import Any, Protocol

from pydantic import BaseModel, ConfigDict, Field

from core import aio
from core.settings import Settings, get_settings
from schemas.agents import AgentConfig, ModelConfig
from schemas.usage import Usage


class ModelRequest(BaseModel):
    """One model call, with the routes to try in order.

    `metadata` carries `kind` (the job kind) and `tenantq`: {"agent": {name, personality, tonality,
    response_style, dos, donts, language}, "payload": the job payload, "findings": [...] for erp_analysis}.
    Build it with `job_metadata()`. Only the offline stand-in reads the `tenantq` part; remote providers are
    sent the kind alone, so job contents never reach a provider's logging metadata.
    """

    model_config = ConfigDict(protected_namespaces=())

    messages: list[dict[str, Any]] = Field(min_length=1)
    routes: list[ModelConfig] = Field(min_length=1, description="Primary first, then the fallbacks.")
    max_tokens: int = Field(default=512, ge=1)
    temperature: float = Field(default=0.3, ge=0, le=2)
    json_schema: dict[str, Any] | None = Field(
        default=None, description="JSON schema of the answer; the answer is then a JSON document."
    )
    metadata: dict[str, Any] = Field(default_factory=dict)
    timeout_s: float | None = Field(default=None, gt=0, description="Per call; a route's own timeout wins.")


class ChatResult(BaseModel):
    model_config = ConfigDict(protected_namespaces=())

    text: str
    usage: Usage
    model: str = Field(description="LiteLLM model string of the route that answered.")
    fallback_used: bool = False
    metadata: dict[str, Any] = Field(default_factory=dict)


class ModelClient(Protocol):
    async def complete(self, request: ModelRequest) -> ChatResult: ...


AGENT_VOICE = ("name", "personality", "tonality", "response_style", "dos", "donts", "language")


def job_metadata(
    kind: str,
    agent: AgentConfig | dict[str, Any],
    payload: dict[str, Any],
    findings: list[dict[str, Any]] | None = None,
) -> dict[str, Any]:
    """The `ModelRequest.metadata` of a job; findings are dicts of category, detector, severity, amount,
    currency, summary."""
    fields = agent.model_dump() if isinstance(agent, AgentConfig) else agent
    voice = {name: fields[name] for name in AGENT_VOICE if name in fields}
    context: dict[str, Any] = {"agent": voice, "payload": payload}
    if findings is not None:
        context["findings"] = findings
    return {"kind": kind, "tenantq": context}


def default_routes(settings: Settings | None = None) -> list[ModelConfig]:
    """The routes of a tenant that names no model: the default model, then LITELLM_FALLBACK_MODELS."""
    from providers.pricing import default_model

    settings = settings or get_settings()
    models = [default_model(settings), *settings.llm.fallback_models]
    return [ModelConfig(name=model, model=model) for model in dict.fromkeys(models)]


_client_lock = threading.Lock()
_client: ModelClient | None = None


def get_client() -> ModelClient:
    """The process's client: LiteLLM, which also serves the offline stand-in when no key is configured."""
    global _client
    with _client_lock:
        if _client is None:
            from providers.llm import LiteLLMClient

            _client = LiteLLMClient()
        return _client


def set_client(client: ModelClient | None) -> None:
    """Replace the process's client (None: back to the default on next use)."""
    global _client
    with _client_lock:
        _client = client


def complete(request: ModelRequest, client: ModelClient | None = None) -> ChatResult:
    """Run one model call from a worker thread on the process loop; never call it from that loop."""
    return aio.run((client or get_client()).complete(request))
