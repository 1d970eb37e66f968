"""Jobs: what producers submit, what travels through the queues, and what clients poll."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from schemas.erp import ErpAnalysisPayload
from schemas.usage import Usage
from schemas.variables import PromptVariables

INSTANCE_ID_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9_-]{0,99}$"


class JobKind(StrEnum):
    email_reply = "email_reply"
    chat_draft = "chat_draft"
    erp_analysis = "erp_analysis"
    noop = "noop"
    """Does nothing and writes nothing: for benchmarks of the queues and for health checks. Not submittable."""


class PriorityClass(StrEnum):
    """Each class has its own shared Celery queue, so a long batch job never holds an interactive one back."""

    interactive = "interactive"
    standard = "standard"
    batch = "batch"


DEFAULT_CLASS: dict[JobKind, PriorityClass] = {
    JobKind.chat_draft: PriorityClass.interactive,
    JobKind.email_reply: PriorityClass.standard,
    JobKind.erp_analysis: PriorityClass.batch,
    JobKind.noop: PriorityClass.standard,
}


class JobStatus(StrEnum):
    queued = "queued"
    running = "running"
    succeeded = "succeeded"
    failed = "failed"
    cancelled = "cancelled"

    @property
    def finished(self) -> bool:
        return self in (JobStatus.succeeded, JobStatus.failed, JobStatus.cancelled)


_EMAIL = r"^[^@\s]+@[^@\s]+$"


class EmailReplyPayload(BaseModel):
    model_config = ConfigDict(extra="forbid", populate_by_name=True)

    from_: str = Field(alias="from", pattern=_EMAIL, max_length=320)
    to: str = Field(pattern=_EMAIL, max_length=320)
    subject: str = Field(default="", max_length=1_000)
    body: str = Field(min_length=1, max_length=100_000)
    message_id: str = Field(min_length=1, max_length=1_000)
    lead_id: str = Field(min_length=1, max_length=200)


class ChatDraftPayload(BaseModel):
    model_config = ConfigDict(extra="forbid")

    message: str = Field(min_length=1, max_length=20_000)
    conversation_id: str = Field(min_length=1, max_length=200)
    lead_id: str = Field(min_length=1, max_length=200)


class _JobRequestBase(BaseModel):
    model_config = ConfigDict(extra="forbid")

    idempotency_key: str | None = Field(
        default=None, min_length=1, max_length=500,
        description="Same key, same tenant: the first job's id comes back and nothing new is enqueued.",
    )
    priority: PriorityClass | None = Field(default=None, description="Defaults to the kind's class.")
    instance_id: str | None = Field(default=None, pattern=INSTANCE_ID_PATTERN, description="The agent instance "
                                    "to run; unset: the project's default instance for the kind.")
    variables: PromptVariables = Field(default_factory=dict, description="Merged over the instance's prompt "
                                       "variables for this run.")


class EmailReplyJob(_JobRequestBase):
    kind: Literal[JobKind.email_reply]
    payload: EmailReplyPayload


class ChatDraftJob(_JobRequestBase):
    kind: Literal[JobKind.chat_draft]
    payload: ChatDraftPayload


class ErpAnalysisJob(_JobRequestBase):
    kind: Literal[JobKind.erp_analysis]
    payload: ErpAnalysisPayload


JobRequest = Annotated[EmailReplyJob | ChatDraftJob | ErpAnalysisJob, Field(discriminator="kind")]
"""What a producer submits; the tenant comes from its credentials, never from the body."""


MAX_ESTIMATE_TOKENS = 10**12
"""Most tokens one job may reserve: far beyond any real job, far below where Redis's 64-bit counters end."""
MAX_ESTIMATE_USD = 10**6
"""Most dollars one job may reserve; admission books them in millionths, so at most 10**12 of those."""
MAX_ATTEMPT = 1_000
"""Most deliveries an envelope may count; far above any TENANTQ_MAX_ATTEMPTS in use."""


class JobEnvelope(BaseModel):
    """What travels through the tenant queue and the Celery message: everything a worker needs to run a job.

    Its numbers are bounded and finite: admission adds them to Redis counters, where an unbounded one
    overflowed a tenant's spend for good."""

    model_config = ConfigDict(validate_assignment=True)

    job_id: str
    tenant_id: str
    kind: JobKind
    priority: PriorityClass
    payload: dict[str, Any]
    enqueued_at: datetime
    attempt: int = Field(default=1, ge=1, le=MAX_ATTEMPT)
    estimate_tokens: int = Field(default=0, ge=0, le=MAX_ESTIMATE_TOKENS,
                                 description="Reserved against the tenant's budget.")
    estimate_usd: float = Field(default=0.0, ge=0, le=MAX_ESTIMATE_USD, allow_inf_nan=False)
    instance_id: str | None = Field(default=None, description="The agent instance it runs; None: the tenant's "
                                    "own agent (jobs queued before instances existed).")
    variables: PromptVariables = Field(default_factory=dict, description="The run's prompt variables.")


class AuditEvent(BaseModel):
    """One step of a job's audit trail."""

    event: str
    at: datetime
    data: dict[str, Any] = Field(default_factory=dict)


class JobOutcome(BaseModel):
    """How one run of a job ended, from the moment it is known until it is recorded.

    It is kept beside the job's lease in Redis before it is written to the tenant's database, so a run whose
    recording is cut short (the worker killed, MongoDB down) is recorded by the job's next delivery as it
    was, without running the job, and paying for its model calls, again."""

    status: JobStatus
    attempt: int = Field(ge=1)
    result: dict[str, Any] | None = None
    error: dict[str, Any] | None = Field(default=None, description="The error's code, message and context.")
    usage: list[Usage] = Field(default_factory=list, description="One entry per model call.")
    events: list[AuditEvent] = Field(default_factory=list, description="The run's audit trail.")

    @property
    def cost_usd(self) -> float:
        return sum(u.cost_usd for u in self.usage)

    @property
    def total_tokens(self) -> int:
        return sum(u.total_tokens for u in self.usage)


class JobView(BaseModel):
    """What clients poll."""

    job_id: str
    tenant_id: str
    kind: JobKind
    status: JobStatus
    priority: PriorityClass
    result: dict[str, Any] | None = None
    usage: Usage | None = None
    error: dict[str, Any] | None = None
    enqueued_at: datetime
    started_at: datetime | None = None
    finished_at: datetime | None = None
    attempts: int = 0
    instance_id: str | None = None


class EnqueueResponse(BaseModel):
    job_id: str
    status: JobStatus
    duplicate: bool = Field(default=False, description="True when an idempotency key matched an earlier job.")
