"""ERP exception analysis: the job payload and the report it produces.

A report is built from deterministic findings, each resting on named ERP documents with an amount at stake
in the tenant's currency; the model only writes the narrative around them, so the figures never depend on
what a model says.
"""

from __future__ import annotations

from datetime import date
from enum import StrEnum
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, StringConstraints


class ErpCategory(StrEnum):
    financial = "financial"
    procurement = "procurement"
    inventory = "inventory"
    order_fulfilment = "order_fulfilment"
    production = "production"
    invoice_matching = "invoice_matching"


class Severity(StrEnum):
    low = "low"
    medium = "medium"
    high = "high"
    critical = "critical"


class ErpAnalysisPayload(BaseModel):
    model_config = ConfigDict(extra="forbid")

    prompt: str = Field(min_length=1, max_length=20_000, description="What the analyst wants to know.")
    categories: list[ErpCategory] = Field(
        default_factory=lambda: list(ErpCategory), min_length=1,
        description="Categories to analyse in quick mode; a full analysis runs all six and lists these first.",
    )
    quick: bool = Field(
        default=False,
        description="Run only `categories`, reading only the tables they need, and skip the research step.",
    )
    system_details: dict[Annotated[str, StringConstraints(max_length=100)],
                         Annotated[str, StringConstraints(max_length=1_000)] | int | float | bool] | None = Field(
        default=None, max_length=50,
        description="About the ERP system (product, release, company code, ...): the model reads them with "
        "the findings.",
    )


class Finding(BaseModel):
    """One exception, with the documents it rests on; `key` is the document or group it is about."""

    category: ErpCategory
    detector: str
    key: str
    severity: Severity
    amount: float = Field(ge=0, description="Amount at stake, in `currency`.")
    currency: str
    summary: str
    documents: list[str] = Field(min_length=1)


class CategoryResult(BaseModel):
    category: ErpCategory
    findings: list[Finding]
    count: int = Field(ge=0)
    amount: float = Field(ge=0)
    omitted: int = Field(
        default=0, ge=0, description="Findings past the listing limit: counted in count and amount, not listed."
    )
    by_severity: dict[Severity, int]
    records_checked: int = Field(ge=0)
    duration_ms: float = Field(ge=0)


class Narrative(BaseModel):
    """What the model writes around the findings; the keys match the erp_analysis system prompt."""

    model_config = ConfigDict(extra="ignore")

    summary: str = Field(min_length=1, max_length=8_000)
    root_causes: list[str] = Field(default_factory=list, max_length=30)
    recommended_actions: list[str] = Field(default_factory=list, max_length=30)


class ResearchResult(BaseModel):
    status: Literal["done", "skipped", "failed"]
    reason: str | None = None
    server: str | None = None
    tool: str | None = None
    text: str | None = None


class DataCoverage(BaseModel):
    server: str
    company: str
    as_of: date
    base_currency: str
    tables: dict[str, int] = Field(description="Records read per table.")
    records: int = Field(ge=0)
    categories_run: list[ErpCategory]
    categories_skipped: list[ErpCategory]
    notes: list[str] = Field(default_factory=list)


class ErpTotals(BaseModel):
    findings: int = Field(ge=0)
    amount: float = Field(ge=0)
    currency: str
    by_severity: dict[Severity, int]
    by_category: dict[ErpCategory, float]


class ErpTimings(BaseModel):
    fetch_ms: float = Field(ge=0)
    detect_ms: dict[ErpCategory, float]
    research_ms: float = Field(ge=0)
    narrative_ms: float = Field(ge=0)
    total_ms: float = Field(ge=0)


class ErpReport(BaseModel):
    """The result of an erp_analysis job."""

    mode: Literal["full", "quick"]
    prompt: str
    currency: str
    categories: list[CategoryResult]
    totals: ErpTotals
    narrative: Narrative
    research: ResearchResult
    coverage: DataCoverage
    timings: ErpTimings
