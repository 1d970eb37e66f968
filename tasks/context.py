"""The context a job handler works with: its envelope, its agent, and the calls it may make.

Handlers see only this, so every model call is bounded by the agent's routes and timeout, every token is
accounted to the job, and every step lands in the tenant's audit trail.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from core.settings import get_settings
from providers.base import ChatResult, ModelRequest, complete
from schemas.agents import AgentConfig
from schemas.jobs import JobEnvelope
from schemas.usage import Usage
from tasks.prompts import render
from tenancy import events, jobs


@dataclass
class JobContext:
    envelope: JobEnvelope
    agent: AgentConfig
    log: Any
    usage: list[Usage] = field(default_factory=list)
    trail: jobs.Trail = field(default_factory=jobs.Trail)
    estimating: bool = False
    """Prompts render with the ingress estimate's CPU limit (TENANTQ_TEMPLATE_ESTIMATE_TIMEOUT_S)."""

    @property
    def currency(self) -> str:
        return self.agent.currency

    def prompt_variables(self) -> dict[str, Any]:
        return self.agent.prompt_context(self.envelope.kind.value, self.envelope.variables)

    def render(self, kind: str, **variables: Any) -> str:
        source = self.agent.prompt_sources.get(kind)
        if source is None:
            return ""
        return render(source, {**self.prompt_variables(), **variables}, tenant_id=self.agent.tenant_id, name=kind,
                      estimate=self.estimating)

    def complete(
        self, messages: list[dict[str, Any]], *, json_schema: dict[str, Any] | None = None,
        metadata: dict[str, Any] | None = None, max_tokens: int | None = None,
    ) -> ChatResult:
        request = ModelRequest(
            messages=messages, routes=self.agent.models, max_tokens=max_tokens or self.agent.max_tokens,
            temperature=self.agent.temperature, json_schema=json_schema,
            metadata={
                "kind": self.envelope.kind.value,
                "tenantq": {"agent": self.prompt_variables()["agent"], "payload": self.envelope.payload,
                            "tenant_id": self.agent.tenant_id, "job_id": self.envelope.job_id},
                **(metadata or {}),
            },
            timeout_s=min(get_settings().llm.request_timeout_s, self.agent.timeout_s or float("inf")),
        )
        result = complete(request)
        self.usage.append(result.usage)
        self.audit("model_call", model=result.model, fallback_used=result.fallback_used,
                   attempts=result.usage.attempts, total_tokens=result.usage.total_tokens,
                   cost_usd=result.usage.cost_usd, latency_ms=result.usage.latency_ms)
        return result

    def audit(self, event: str, **data: Any) -> None:
        """Record a step in the job's audit trail (recorded with the run's outcome) and publish it live."""
        self.trail.add(event, **data)
        events.publish(self.envelope.job_id, event, "running", **data)
