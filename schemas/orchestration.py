"""The orchestration API's language: projects, master data, agent instances and executions.

A project is a tenant; an execution is a job. These models only name them the way users of orchestration
services already do (`project_id`, `input_data`, `async_execution`, ...), over the same records.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated, Any, Generic, Literal, TypeVar

from pydantic import (
    AfterValidator,
    AliasChoices,
    BaseModel,
    ConfigDict,
    Field,
    StringConstraints,
    field_validator,
    model_validator,
)

from schemas.agents import AgentSettings
from schemas.ids import TenantId
from schemas.jobs import INSTANCE_ID_PATTERN, JobKind, JobStatus, PriorityClass
from schemas.tenants import Plan, TenantStatus
from schemas.usage import Usage
from schemas.variables import PromptVariables, bounded_json

T = TypeVar("T")

RunnableKind = Literal[JobKind.email_reply, JobKind.chat_draft, JobKind.erp_analysis]
MASTER_ID_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,99}$"
MasterId = Annotated[str, StringConstraints(pattern=MASTER_ID_PATTERN)]
Name = Annotated[str, StringConstraints(min_length=1, max_length=200)]
Text = Annotated[str, StringConstraints(max_length=2_000)]
Rule = Annotated[str, StringConstraints(max_length=500)]
JsonSchema = Annotated[dict[str, Any], AfterValidator(lambda v: bounded_json(v, "input_schema", 20, 64 * 1024))]
MAX_PROMPT_CHARS = 64 * 1024
DEFAULT_TIMEOUT_S = 120.0


class Page(BaseModel, Generic[T]):
    """One page of a list; `next_cursor` (opaque) asks for the next one, None on the last page."""

    items: list[T]
    next_cursor: str | None = None


# --- projects ----------------------------------------------------------------------------------------------


class ProjectCreate(BaseModel):
    """A new project (a tenant). Plan fields may come flat (`weight`, `monthly_budget_usd`, ...) or as `plan`."""

    model_config = ConfigDict(extra="forbid")

    project_id: TenantId
    project_name: Name | None = None
    customer_name: Name | None = None
    description: Text | None = None
    created_by: Name | None = None
    template_id: MasterId = Field(default="default", description="The agent template of the project's own agent.")
    currency: str = Field(default="EUR", pattern=r"^[A-Z]{3}$")
    plan: Plan = Field(default_factory=Plan)

    @model_validator(mode="before")
    @classmethod
    def _plan_fields_may_come_flat(cls, data: Any) -> Any:
        if not isinstance(data, dict):
            return data
        flat = {k: data[k] for k in Plan.model_fields if k in data}
        if not flat:
            return data
        rest = {k: v for k, v in data.items() if k not in flat}
        plan = rest.get("plan")
        rest["plan"] = {**plan, **flat} if isinstance(plan, dict) else (plan if plan is not None else flat)
        return rest


class Project(BaseModel):
    project_id: str
    project_name: str | None = None
    customer_name: str | None = None
    description: str | None = None
    created_by: str | None = None
    template_id: str
    currency: str
    plan: Plan
    status: TenantStatus
    created_at: datetime


class ProjectCreated(BaseModel):
    project: Project
    api_key: str = Field(description="The project's first API key, shown this once.")


# --- master data -------------------------------------------------------------------------------------------


class AgentTemplateSpec(AgentSettings):
    """An agent template: the agent fields, the job kind it is for, and its system prompt(s)."""

    agent_id: MasterId
    description: Text | None = None
    kind: RunnableKind | None = Field(default=None, description="The job kind it is for; unset: any kind.")
    system_prompt_id: MasterId | None = Field(
        default=None, description="The system prompt of its kind (or of every kind); `prompts` may name one per kind.")
    created_by: Name | None = None

    def prompt_ids(self) -> dict[str, str]:
        """Job kind -> system prompt id, `prompts` over `system_prompt_id`."""
        kinds = [self.kind] if self.kind else [k.value for k in JobKind if k is not JobKind.noop]
        base = {str(k): self.system_prompt_id for k in kinds} if self.system_prompt_id else {}
        return {**base, **(self.prompts or {})}


class AgentTemplateView(AgentTemplateSpec):
    created_at: datetime | None = None
    updated_at: datetime | None = None


class SystemPromptSpec(BaseModel):
    model_config = ConfigDict(extra="forbid")

    prompt_id: MasterId
    name: Name | None = None
    description: Text | None = None
    template: str = Field(min_length=1, max_length=MAX_PROMPT_CHARS, description="Jinja2 source.")
    created_by: Name | None = None


class SystemPromptUpdate(BaseModel):
    """A new version of a prompt; the earlier ones are kept."""

    model_config = ConfigDict(extra="forbid")

    template: str = Field(min_length=1, max_length=MAX_PROMPT_CHARS)
    name: Name | None = None
    description: Text | None = None
    created_by: Name | None = None


class SystemPromptVersion(BaseModel):
    version: int
    template: str
    created_at: datetime | None = None
    created_by: str | None = None


class SystemPromptSummary(BaseModel):
    prompt_id: str
    name: str | None = None
    description: str | None = None
    version: int = Field(description="The latest version.")
    template: str = Field(description="The latest version's source.")
    created_at: datetime | None = None
    updated_at: datetime | None = None
    created_by: str | None = None


class SystemPromptView(SystemPromptSummary):
    versions: list[SystemPromptVersion] = Field(default_factory=list, description="Every version, newest first.")


class ToolSpec(BaseModel):
    """A tool in the catalogue: what agents' `allowed_tools` name, and the MCP server that offers it."""

    model_config = ConfigDict(extra="forbid")

    name: Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9_.-]{1,100}$")]
    description: Text | None = None
    mcp_server: MasterId | None = Field(default=None, description="The registered MCP server that offers it.")
    input_schema: JsonSchema = Field(default_factory=dict, description="JSON Schema of its input.")
    created_by: Name | None = None


# --- agent instances ---------------------------------------------------------------------------------------


class CustomSettings(BaseModel):
    """An instance's own settings: its timeout, and overrides of the template's agent fields."""

    model_config = ConfigDict(extra="forbid", protected_namespaces=())

    timeout: float = Field(default=DEFAULT_TIMEOUT_S, gt=0, le=3_600, description="Seconds: how long a "
                           "synchronous execution waits, and the most one model call may take.")
    model: Name | None = Field(default=None, description="A model config name or a LiteLLM provider/model string.")
    fallbacks: list[Name] | None = Field(default=None, max_length=10)
    max_tokens: int | None = Field(default=None, ge=1, le=32_000)
    temperature: float | None = Field(default=None, ge=0, le=2)
    name: Name | None = None
    personality: Text | None = None
    tonality: Rule | None = None
    response_style: Rule | None = None
    language: Annotated[str, StringConstraints(max_length=50)] | None = None
    dos: list[Rule] | None = Field(default=None, max_length=50)
    donts: list[Rule] | None = Field(default=None, max_length=50)
    mcp_servers: list[MasterId] | None = Field(default=None, max_length=20)
    allowed_tools: list[Name] | None = Field(default=None, max_length=100)

    def overrides(self) -> dict[str, Any]:
        """The agent fields it overrides."""
        return self.model_dump(exclude_none=True, exclude={"timeout"})


class AgentInstanceSpec(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: Name
    description: Text | None = None
    template_id: MasterId = Field(validation_alias=AliasChoices("template_id", "agent_id"),
                                  description="The agent template (`agent_id` is accepted too).")
    kind: RunnableKind | None = Field(default=None, description="The job kind it runs; unset: the template's.")
    system_prompt_variables: PromptVariables = Field(default_factory=dict)
    system_prompt_version: int | None = Field(default=None, ge=1, description="Pin a version of the template's "
                                              "system prompt; unset: follow the latest.")
    custom_settings: CustomSettings = Field(default_factory=CustomSettings)
    created_by: Name | None = None


class AgentInstance(BaseModel):
    instance_id: str
    project_id: str
    template_id: str
    kind: RunnableKind
    name: str
    description: str | None = None
    default_for: RunnableKind | None = Field(default=None, description="Set on the project's default instance "
                                             "of a kind, made on first use.")
    system_prompt_variables: dict[str, Any] = Field(default_factory=dict)
    system_prompt_version: int | None = None
    custom_settings: CustomSettings = Field(default_factory=CustomSettings)
    created_by: str | None = None
    created_at: datetime
    updated_at: datetime

    @field_validator("created_at", "updated_at")
    @classmethod
    def _in_utc(cls, value: datetime) -> datetime:
        """Some servers hand back stored times without their zone; they were written in UTC."""
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value


# --- executions ----------------------------------------------------------------------------------------------


class ExecutionCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    instance_id: str | None = Field(default=None, pattern=INSTANCE_ID_PATTERN,
                                    description="Unset: the project's default instance of `kind`.")
    kind: RunnableKind | None = Field(default=None, description="Unset: the instance's kind.")
    input_data: dict[str, Any] = Field(description="The job's payload, as its kind defines it.")
    variables: PromptVariables = Field(default_factory=dict)
    async_execution: bool = Field(default=False, description="True: answer 202 at once. False: wait up to the "
                                  "instance's timeout for the outcome.")
    idempotency_key: str | None = Field(default=None, min_length=1, max_length=500)
    priority: PriorityClass | None = None


class ExecutionAccepted(BaseModel):
    execution_id: str
    status: JobStatus
    duplicate: bool = False
    status_url: str
    result_url: str


class ExecutionSummary(BaseModel):
    execution_id: str
    project_id: str
    instance_id: str | None = None
    kind: JobKind
    status: JobStatus
    priority: PriorityClass
    usage: Usage | None = None
    error: dict[str, Any] | None = None
    enqueued_at: datetime
    started_at: datetime | None = None
    finished_at: datetime | None = None
    attempts: int = 0


class ExecutionView(ExecutionSummary):
    input_data: dict[str, Any] | None = None
    variables: dict[str, Any] = Field(default_factory=dict)
    result: dict[str, Any] | None = None


class ExecutionResult(BaseModel):
    execution_id: str
    status: JobStatus
    result: dict[str, Any] | None = None
    error: dict[str, Any] | None = None
    usage: Usage | None = None
