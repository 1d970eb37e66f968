"""Executions as the deprecated dynamic-agent routes list them: a job's state without its payload or result."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from schemas.jobs import JobKind, JobStatus, PriorityClass
from schemas.usage import Usage


class ExecuteRequest(BaseModel):
    """The agent (path) says the kind; the body carries what POST /v1/jobs carries besides it."""

    model_config = ConfigDict(extra="forbid")

    payload: dict[str, Any] = Field(description="The job's payload, as for POST /v1/jobs with this kind.")
    idempotency_key: str | None = Field(default=None, min_length=1, max_length=500)
    priority: PriorityClass | None = None


class ExecutionSummary(BaseModel):
    execution_id: str
    kind: JobKind
    status: JobStatus
    priority: PriorityClass
    instance_id: str | None = None
    usage: Usage | None = None
    error: dict[str, Any] | None = None
    enqueued_at: datetime
    started_at: datetime | None = None
    finished_at: datetime | None = None


class ExecutionPage(BaseModel):
    executions: list[ExecutionSummary] = Field(description="Newest first.")
    next_cursor: str | None
