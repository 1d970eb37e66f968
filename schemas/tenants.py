"""Tenants and their plans."""

from __future__ import annotations

import math
from collections.abc import Mapping
from datetime import datetime
from enum import StrEnum
from typing import Any, get_args

from pydantic import BaseModel, ConfigDict, Field
from pydantic.fields import FieldInfo

from schemas.agents import AgentSettings
from schemas.ids import TenantId


class TenantStatus(StrEnum):
    active = "active"
    suspended = "suspended"


MAX_MONTHLY_BUDGET_USD = 10**9
"""Most dollars a month a plan may name. Admission books dollars in millionths, so a budget is at most 10**15
of those: below 2**53, where Lua's numbers and Redis's counters still hold every whole number exactly."""
MAX_PLAN_TOKENS = 10**15
"""Most tokens a month or a minute a plan may name, for the same reason."""
MAX_REQUESTS_PER_MINUTE = 10**9
"""Most requests a minute a plan may name: far beyond any fleet, far below where a counter ends."""


class Plan(BaseModel):
    """Fair share, caps, budgets and rate limits of one tenant.

    Every number is bounded and finite: the plan is mirrored into Redis, where admission compares counters
    against it, and an unbounded one (1e308 dollars, 2**63 tokens) could not be stored or mirrored at all."""

    model_config = ConfigDict(extra="forbid")

    weight: int = Field(default=1, ge=1, le=100, description="Jobs admitted per round-robin turn.")
    max_in_flight: int = Field(default=0, ge=0, le=100_000, description="0: only the fleet cap applies.")
    monthly_budget_usd: float | None = Field(
        default=None, ge=0, le=MAX_MONTHLY_BUDGET_USD, allow_inf_nan=False,
        description="Dollars the tenant's jobs may spend in a calendar month (UTC); none: no limit.")
    monthly_token_budget: int | None = Field(
        default=None, ge=0, le=MAX_PLAN_TOKENS,
        description="Tokens the tenant's jobs may use in a calendar month (UTC); none: no limit.")
    requests_per_minute: int | None = Field(
        default=None, ge=1, le=MAX_REQUESTS_PER_MINUTE, description="Jobs admitted per minute; none: no limit.")
    tokens_per_minute: int | None = Field(
        default=None, ge=1, le=MAX_PLAN_TOKENS, description="Tokens admitted per minute; none: no limit.")

    @classmethod
    def clamped(cls, raw: Mapping[str, Any]) -> tuple[Plan, list[str]]:
        """A stored plan brought within the bounds, with the names of the fields it changed.

        Plans stored before the bounds existed may hold 1e308 or infinite dollars, or 2**62 tokens: a number
        past a bound becomes the bound (for a budget or a rate, in effect no limit, which is what such a
        number meant), and what is no number at all (or an unknown field) is dropped for the default."""
        values: dict[str, Any] = {}
        changed = sorted(str(name) for name in raw if name not in cls.model_fields)
        for name, field in cls.model_fields.items():
            if name in raw:
                value = _within(raw[name], field)
                if value is not _DEFAULT:
                    values[name] = value
                if value is _DEFAULT or value != raw[name]:
                    changed.append(name)
        return cls.model_validate(values), changed


_DEFAULT = object()


def _within(value: Any, field: FieldInfo) -> Any:
    """`value` clamped into the field's bounds; _DEFAULT where it is no number, or not a number it takes."""
    if value is None and field.default is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float) or math.isnan(value):
        return _DEFAULT
    low = next((m.ge for m in field.metadata if hasattr(m, "ge")), -math.inf)
    high = next((m.le for m in field.metadata if hasattr(m, "le")), math.inf)
    bounded = min(max(value, low), high)
    if int in get_args(field.annotation) or field.annotation is int:
        return int(bounded) if math.isfinite(bounded) else _DEFAULT
    return float(bounded) if math.isfinite(bounded) else _DEFAULT


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
