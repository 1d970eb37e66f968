"""What a project's read-side views answer: token usage by group, and the dashboard."""

from __future__ import annotations

from datetime import date, datetime
from enum import StrEnum

from pydantic import BaseModel, Field


class UsageGroupBy(StrEnum):
    instance = "instance"
    model = "model"
    day = "day"


NO_GROUP = "none"
"""The group of usage whose record lacks the grouped field (old records have no instance_id)."""


class UsageFigures(BaseModel):
    prompt_tokens: int = 0
    completion_tokens: int = 0
    total_tokens: int = 0
    cost_usd: float = 0.0
    count: int = Field(default=0, description="Model calls (token usage records).")


class UsageGroup(UsageFigures):
    key: str = Field(description="The instance id, the model, or the day (YYYY-MM-DD, UTC); 'none' if unset.")


class TokenUsageReport(BaseModel):
    project_id: str
    start_date: date
    end_date: date = Field(description="Inclusive.")
    group_by: UsageGroupBy
    groups: list[UsageGroup] = Field(description="Days in order; instances and models by cost, highest first.")
    total: UsageFigures


class Period(BaseModel):
    start: datetime
    end: datetime


class ExecutionCounts(BaseModel):
    by_status: dict[str, int] = Field(description="Executions enqueued in the period, by status.")
    total: int
    success_rate: float | None = Field(description="succeeded / (succeeded + failed); null before any ended.")


class Durations(BaseModel):
    """Run time (finished_at - started_at) of the period's finished executions, newest first, at most `limit`."""

    count: int
    limit: int
    p50_s: float | None
    p95_s: float | None


class MonthSpend(UsageFigures):
    budget_usd: float | None = Field(description="The plan's monthly_budget_usd.")
    token_budget: int | None = Field(description="The plan's monthly_token_budget.")
    budget_used: float | None = Field(description="cost_usd / budget_usd.")
    token_budget_used: float | None = Field(description="total_tokens / token_budget.")


class InstanceCost(BaseModel):
    instance_id: str
    cost_usd: float
    total_tokens: int
    count: int


class Failure(BaseModel):
    execution_id: str
    kind: str
    instance_id: str
    finished_at: datetime | None
    code: str | None
    message: str | None = Field(description="The reason, as the job's error says it.")


class Dashboard(BaseModel):
    project_id: str
    period: Period = Field(description="This month (UTC) until now.")
    executions: ExecutionCounts
    duration: Durations
    month: MonthSpend
    top_instances: list[InstanceCost]
    last_failures: list[Failure]
