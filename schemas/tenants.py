"""Tenants and their plans."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum

from pydantic import BaseModel, ConfigDict, Field

from schemas.agents import AgentSettings
from schemas.ids import TenantId


class TenantStatus(StrEnum):
    active = "active"
    suspended = "suspended"


class Plan(BaseModel):
    """Fair share, caps, budgets and rate limits of one tenant."""

    model_config = ConfigDict(extra="forbid")

    weight: int = Field(default=1, ge=1, le=100, description="Jobs admitted per round-robin turn.")
    max_in_flight: int = Field(default=0, ge=0, le=100_000, description="0: only the fleet cap applies.")
    monthly_budget_usd: float | None = Field(default=None, ge=0)
    monthly_token_budget: int | None = Field(default=None, ge=0)
    requests_per_minute: int | None = Field(default=None, ge=1)
    tokens_per_minute: int | None = Field(default=None, ge=1)


class TenantCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    tenant_id: TenantId
    name: str | None = Field(default=None, max_length=200)
    template_id: str = Field(default="default", min_length=1, max_length=100)
    agent: AgentSettings = Field(default_factory=AgentSettings)
    plan: Plan = Field(default_factory=Plan)
    currency: str = Field(default="EUR", pattern=r"^[A-Z]{3}$")
    customer_name: str | None = Field(default=None, max_length=200)
    description: str | None = Field(default=None, max_length=2_000)
    created_by: str | None = Field(default=None, max_length=200)


class Tenant(TenantCreate):
    status: TenantStatus = TenantStatus.active
    created_at: datetime
