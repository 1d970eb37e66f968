"""Token usage and cost of one model call."""

from __future__ import annotations

from pydantic import BaseModel, Field


class Usage(BaseModel):
    prompt_tokens: int = Field(default=0, ge=0)
    completion_tokens: int = Field(default=0, ge=0)
    total_tokens: int = Field(default=0, ge=0)
    cost_usd: float = Field(default=0.0, ge=0)
    model: str = ""
    provider: str = ""
    latency_ms: float = Field(default=0.0, ge=0)
    attempts: int = Field(default=1, ge=0, description="Calls made, retries and fallbacks included.")
    offline: bool = Field(default=False, description="True when the offline stand-in wrote the answer.")

    def __add__(self, other: Usage) -> Usage:
        return Usage(
            prompt_tokens=self.prompt_tokens + other.prompt_tokens,
            completion_tokens=self.completion_tokens + other.completion_tokens,
            total_tokens=self.total_tokens + other.total_tokens,
            cost_usd=self.cost_usd + other.cost_usd,
            model=other.model or self.model,
            provider=other.provider or self.provider,
            latency_ms=self.latency_ms + other.latency_ms,
            attempts=self.attempts + other.attempts,
            offline=self.offline or other.offline,
        )
