"""The ERP routes' language: analysis requests, an analysis as an execution, and the ERP server's status."""

from __future__ import annotations

from datetime import date, datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from schemas.erp import ErpAnalysisPayload, ErpReport
from schemas.jobs import ErpAnalysisJob, JobKind, JobStatus
from schemas.usage import Usage


class ErpAnalyzeRequest(ErpAnalysisPayload):
    idempotency_key: str | None = Field(
        default=None, min_length=1, max_length=500,
        description="Same key, same project: the first analysis's id comes back and nothing new is started.",
    )

    def job(self, *, quick: bool | None = None) -> ErpAnalysisJob:
        payload = self.model_dump(exclude={"idempotency_key"})
        if quick is not None:
            payload["quick"] = quick
        return ErpAnalysisJob(kind=JobKind.erp_analysis, payload=ErpAnalysisPayload(**payload),
                              idempotency_key=self.idempotency_key)


class ErpQuickRequest(ErpAnalyzeRequest):
    """Quick mode always: only `categories`, only their tables, no research step."""

    quick: Literal[True] = Field(default=True, description="Always true here.")


class ErpSubmitted(BaseModel):
    execution_id: str
    status: JobStatus
    duplicate: bool = False


class ErpExecution(BaseModel):
    """An ERP analysis as an execution: its state, and its report once it succeeded."""

    execution_id: str
    project_id: str
    status: JobStatus
    report: ErpReport | None = None
    error: dict[str, Any] | None = None
    usage: Usage | None = None
    enqueued_at: datetime
    started_at: datetime | None = None
    finished_at: datetime | None = None


class ErpStatus(BaseModel):
    model_config = ConfigDict(extra="forbid")

    project_id: str
    reachable: bool
    server: str | None = Field(description="The registration of the ERP MCP server the project's agent uses.")
    tools: list[str] = Field(default_factory=list, description="Tools it offers that its registration allows.")
    company: str | None = None
    as_of: date | None = None
    base_currency: str | None = None
    tables: dict[str, int] = Field(default_factory=dict, description="Records per table.")
    records: int = 0
    latency_ms: float | None = Field(default=None, description="Round trip of the describe call.")
    reason: str | None = Field(default=None, description="Why it is unreachable.")
    code: str | None = Field(default=None, description="The error code behind `reason`.")
