"""What the handler needs from the job context, as a Protocol, so it type-checks and is testable on its own.

The worker's real JobContext satisfies it structurally; tests pass a small stand-in with a canned model.
"""

from __future__ import annotations

from typing import Any, Protocol

from schemas.agents import AgentConfig
from schemas.jobs import JobEnvelope


class ModelAnswer(Protocol):
    @property
    def text(self) -> str: ...


class JobContext(Protocol):
    @property
    def envelope(self) -> JobEnvelope: ...

    @property
    def agent(self) -> AgentConfig: ...

    @property
    def currency(self) -> str: ...

    @property
    def log(self) -> Any: ...

    def render(self, kind: str, **variables: Any) -> str: ...

    def complete(self, messages: list[dict[str, Any]], *, json_schema: dict[str, Any] | None = None,
                 metadata: dict[str, Any] | None = None, max_tokens: int | None = None) -> ModelAnswer: ...

    def audit(self, event: str, **data: Any) -> None: ...
