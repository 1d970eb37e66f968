"""A project's audit log as its API lists it: job events and instance changes, in one shape."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import BaseModel, Field


class AuditEntry(BaseModel):
    """Job events carry job_id and data; instance changes carry actor, entity, entity_id, before and after."""

    id: str
    at: datetime
    action: str = Field(description="The job event (queued, started, model_call, ...) or the change's action.")
    job_id: str | None = None
    data: dict[str, Any] | None = None
    actor: str | None = None
    entity: str | None = None
    entity_id: str | None = None
    before: Any = None
    after: Any = None


class AuditPage(BaseModel):
    entries: list[AuditEntry] = Field(description="Newest first.")
    next_cursor: str | None = Field(description="Pass as `cursor` for the next page; null on the last page.")
