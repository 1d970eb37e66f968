"""ERP exception analysis: the job payload (the report models are added with the analysis)."""

from __future__ import annotations

from enum import StrEnum

from pydantic import BaseModel, ConfigDict, Field


class ErpCategory(StrEnum):
    financial = "financial"
    procurement = "procurement"
    inventory = "inventory"
    order_fulfilment = "order_fulfilment"
    production = "production"
    invoice_matching = "invoice_matching"


class ErpAnalysisPayload(BaseModel):
    model_config = ConfigDict(extra="forbid")

    prompt: str = Field(min_length=1, max_length=20_000, description="What the analyst wants to know.")
    categories: list[ErpCategory] = Field(
        default_factory=lambda: list(ErpCategory), min_length=1, description="Categories to analyse."
    )
