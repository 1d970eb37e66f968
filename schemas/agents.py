"""Agent configuration: a master template in the master database plus each tenant's overrides."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field

Name = Annotated[str, Field(max_length=200)]
"""A model, prompt, MCP server or tool name. A bounded string is also one that pydantic checks is text (a
lone surrogate, which no database can store, is refused)."""
Line = Annotated[str, Field(max_length=2_000)]
PromptKind = Annotated[str, Field(pattern=r"^[a-z][a-z0-9_]{0,49}$")]
"""A job kind, as a key of stored documents: no dots, dollars or NUL bytes, which MongoDB refuses in keys."""
PROMPT_AGENT_FIELDS = ("name", "personality", "tonality", "response_style", "dos", "donts", "language")
"""The agent's fields a system prompt sees as `agent.<field>`."""


class ModelConfig(BaseModel):
    """A named model route. Keys are never stored: `api_key_env` names the environment variable."""

    model_config = ConfigDict(extra="forbid", protected_namespaces=())

    name: str = Field(min_length=1, max_length=200)
    model: str = Field(min_length=3, description="LiteLLM model string: openai/..., anthropic/..., offline/...")
    api_base: str | None = None
    api_key_env: str | None = Field(default=None, description="Environment variable holding the key.")
    timeout_s: float | None = Field(default=None, gt=0)
    input_cost_per_token: float | None = Field(default=None, ge=0, description="Overrides LiteLLM's price.")
    output_cost_per_token: float | None = Field(default=None, ge=0)


class AgentSettings(BaseModel):
    """The fields a tenant may override; every one optional so overrides merge over the template."""

    model_config = ConfigDict(extra="forbid", protected_namespaces=())

    name: str | None = Field(default=None, max_length=200)
    personality: str | None = Field(default=None, max_length=2_000)
    tonality: str | None = Field(default=None, max_length=500)
    response_style: str | None = Field(default=None, max_length=500)
    dos: list[Line] | None = Field(default=None, max_length=100)
    donts: list[Line] | None = Field(default=None, max_length=100)
    language: str | None = Field(default=None, max_length=50)
    model: Name | None = Field(default=None, description="A model config name or a LiteLLM model string.")
    fallbacks: list[Name] | None = Field(default=None, max_length=20)
    max_tokens: int | None = Field(default=None, ge=1, le=32_000)
    temperature: float | None = Field(default=None, ge=0, le=2)
    prompts: dict[PromptKind, Name] | None = Field(default=None, max_length=50,
                                                   description="Job kind -> system prompt name.")
    mcp_servers: list[Name] | None = Field(default=None, max_length=50, description="MCP servers this agent may use.")
    allowed_tools: list[Name] | None = Field(default=None, max_length=500,
                                             description="Tools it may call; empty: all allowed.")


class AgentTemplate(AgentSettings):
    template_id: str = Field(min_length=1, max_length=100)


class AgentConfig(BaseModel):
    """The resolved configuration one job runs with."""

    model_config = ConfigDict(protected_namespaces=())

    tenant_id: str
    tenant_name: str
    currency: str = "EUR"
    template_id: str
    name: str = "Assistant"
    personality: str = "helpful and precise"
    tonality: str = "friendly"
    response_style: str = "concise"
    dos: list[str] = Field(default_factory=list)
    donts: list[str] = Field(default_factory=list)
    language: str = "English"
    models: list[ModelConfig] = Field(description="Primary first, then the fallbacks.")
    max_tokens: int = 512
    temperature: float = 0.3
    prompt_sources: dict[str, str] = Field(description="Job kind -> Jinja2 source of its system prompt.")
    mcp_servers: list[str] = Field(default_factory=list)
    allowed_tools: list[str] = Field(default_factory=list)
    instance_id: str | None = Field(default=None, description="The agent instance; None: the tenant's own agent.")
    kind: str | None = Field(default=None, description="The job kind the instance runs; None: any kind.")
    variables: dict[str, Any] = Field(default_factory=dict, description="The instance's system prompt variables.")
    timeout_s: float | None = Field(default=None, description="The instance's timeout; caps each model call.")

    def prompt_context(self, kind: str, run_variables: Mapping[str, Any] | None = None) -> dict[str, Any]:
        """What a system prompt of this agent renders with: the instance's variables, the run's over them, and
        tenantq's own `agent`, `tenant` and `kind` (names that variables may not take)."""
        agent = self.model_dump(include=set(PROMPT_AGENT_FIELDS))
        tenant = {"id": self.tenant_id, "name": self.tenant_name, "currency": self.currency}
        return {**self.variables, **(run_variables or {}), "agent": agent, "tenant": tenant, "kind": kind}
