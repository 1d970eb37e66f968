"""The one settings object, nested by concern, each concern with its own environment prefix.

Every field has a safe default for the embedded setup (`tenantq up` on a laptop). Nothing here is read at
import time: call `get_settings()`; tests and the CLI call `get_settings.cache_clear()` after changing the
environment. No `.env` file is loaded.
"""

from __future__ import annotations

import os
from functools import lru_cache
from pathlib import Path

from pydantic import AliasChoices, Field, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from core.redaction import remember
from core.secretfiles import read_admin_token

OFFLINE_MODEL = "offline/tenantq-draft"
"""The deterministic stand-in model of `providers/offline.py`, used where no provider key is configured."""


class RedisSettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="REDIS_", extra="ignore")

    url: str | None = Field(
        default=None,
        description="Broker, result backend and tenant queues. Unset: `tenantq up` starts a private redis-server.",
    )
    key_prefix: str = Field(default="tq", description="Prefix of every tenantq key, so fleets can share a Redis.")


class MongoSettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="MONGODB_", extra="ignore")

    url: str | None = Field(
        default=None,
        description="MongoDB URL. Unset: `tenantq up` starts the embedded nx-27017 server under the data dir.",
    )
    master_database: str = Field(
        default="tenantq-master",
        validation_alias=AliasChoices("MASTER_DATABASE_NAME", "MONGODB_MASTER_DATABASE"),
        description="Database of tenants, agent templates, model configs, API keys and MCP servers.",
    )
    tenant_database_prefix: str = Field(
        default="tenantq-tenant-",
        validation_alias=AliasChoices("TENANT_DATABASE_PREFIX", "MONGODB_TENANT_DATABASE_PREFIX"),
        description="Each tenant's own database is this prefix plus the tenant id.",
    )
    timeout_ms: int = Field(default=5000, ge=100, description="Server selection and socket timeout.")
    outage_wait_s: float = Field(
        default=120.0, ge=0, description="How long a running job waits, retrying with backoff, for an unreachable "
        "MongoDB before it is handed back to its queue (its finished model output kept in Redis).")


class LLMSettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="LITELLM_", extra="ignore")

    default_model: str | None = Field(
        default=None,
        description="Model when a tenant names none. Unset: openai/gpt-4o-mini if OPENAI_API_KEY is set, "
        "else the offline stand-in.",
    )
    fallback_models: list[str] = Field(default_factory=list, description="Tried in order after the default.")
    request_timeout_s: float = Field(default=60.0, gt=0, description="Timeout of one model call.")
    max_attempts: int = Field(default=4, ge=1, le=10, description="Attempts per model on transient errors.")
    backoff_initial_s: float = Field(default=0.5, ge=0, description="First backoff; it doubles, with jitter.")
    backoff_max_s: float = Field(default=8.0, ge=0, description="Longest single backoff.")
    max_tokens: int = Field(default=512, ge=1, description="Completion tokens when the agent sets none.")
    breaker_failures: int = Field(default=5, ge=1, description="Transient failures in a row, fleet-wide, "
                                  "that open a model's circuit: calls to it stop until the cooldown is over.")
    breaker_cooldown_s: float = Field(default=10.0, gt=0, description="How long an open circuit stays open "
                                      "before one probe call is let through; it doubles while probes fail.")
    local_model_cost_map: bool = Field(
        default=True, description="Use LiteLLM's bundled price map instead of downloading one at import."
    )


class FleetSettings(BaseSettings):
    """Queues, admission and workers."""

    model_config = SettingsConfigDict(env_prefix="TENANTQ_", extra="ignore")

    data_dir: Path = Field(default=Path(".tenantq"), description="Embedded services keep their data here.")
    worker_concurrency: int = Field(default=128, ge=1, le=2000, description="Jobs in flight per worker process.")
    fleet_max_in_flight: int = Field(default=10_000, ge=1, description="Fleet-wide cap on admitted jobs.")
    default_tenant_max_in_flight: int = Field(
        default=0, ge=0, description="Per-tenant cap when the plan sets none; 0 means only the fleet cap."
    )
    lease_ttl_s: float = Field(default=60.0, gt=1, description="A job's slot expires this long after its "
                               "worker's last heartbeat, so a killed worker leaks no slot.")
    max_attempts: int = Field(default=3, ge=1, description="Workers a job may lose (killed, crashed) before "
                              "it fails for good.")
    job_deadline_s: float = Field(default=900.0, gt=0, description="While every model of a job is down, the "
                                  "job goes back to its queue with a delay until this long after it was "
                                  "enqueued; then it fails with the provider's reason.")
    handback_delay_max_s: float = Field(default=60.0, gt=0, description="Longest delay before a handed-back "
                                        "job is queued again (the delay doubles from 1 s, with jitter).")
    dispatch_interval_s: float = Field(default=0.5, gt=0, description="Longest wait between admission rounds.")
    admit_batch: int = Field(default=64, ge=1, le=1000, description="Jobs admitted per admission round trip.")
    max_body_bytes: int = Field(default=256 * 1024, ge=1024, description="Largest job body the ingress takes.")
    admin_max_body_bytes: int = Field(
        default=256 * 1024, ge=1024, description="Largest body of an admin request, and of any other request "
        "that is not a job submission.")
    auth_failure_limit: int = Field(
        default=20, ge=1, description="Failed authentications a client address may make per window; past "
        "that its requests are answered 429, their credentials unchecked, until the window ends.")
    auth_failure_window_s: float = Field(
        default=60.0, gt=0, le=86_400, description="The window of TENANTQ_AUTH_FAILURE_LIMIT, opened by an "
        "address's first failure.")
    agent_cache_size: int = Field(default=500, ge=1, description="Agent configs cached per process.")
    agent_cache_ttl_s: float = Field(default=60.0, ge=0, description="How long a cached agent config lives.")
    admin_token: str | None = Field(default=None, description="Bearer token of the admin endpoints. Unset: the "
                                    "one `tenantq up` keeps in `<data dir>/admin-token` (mode 0600), if any.")
    log_level: str = Field(default="INFO", description="structlog level.")
    log_json: bool = Field(default=False, description="JSON log lines (production) instead of console lines.")


    @model_validator(mode="after")
    def _admin_token_of_the_data_dir(self) -> FleetSettings:
        if self.admin_token is None:
            self.admin_token = read_admin_token(self.data_dir)
        if self.admin_token:
            remember(self.admin_token)  # masked in every line this process writes, whatever its shape
        return self


class McpSettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="TENANTQ_MCP_", extra="ignore")

    call_timeout_s: float = Field(default=30.0, gt=0, description="Timeout of one MCP tool call.")
    start_timeout_s: float = Field(default=30.0, gt=0, description="Timeout of an MCP server's start and "
                                   "handshake, apart from the timeout of the call that needed it.")
    max_attempts: int = Field(default=2, ge=1, le=5, description="Attempts of a tool call; a dead server is "
                              "restarted between attempts.")


class TemplateSettings(BaseSettings):
    """Limits on tenants' prompt templates: checked when a template is saved, enforced while it renders, so
    that one tenant's template cannot slow or exhaust a process that serves the others."""

    model_config = SettingsConfigDict(env_prefix="TENANTQ_TEMPLATE_", extra="ignore")

    max_source_chars: int = Field(default=65_536, ge=1, description="Longest template source that may be "
                                  "saved or rendered.")
    max_number_digits: int = Field(default=100, ge=1, le=4_000, description="Largest whole number, in decimal "
                                   "digits, that a template may write or compute.")
    max_length: int = Field(default=100_000, ge=1, description="Longest string, list or range that one "
                            "operation of a template may build (*, +, ~, %, range, a filter, a method).")
    max_loop_steps: int = Field(default=10_000, ge=1, description="Loop iterations of one render, nested and "
                                "recursive loops counted together.")
    max_render_chars: int = Field(default=1_000_000, ge=1, description="Characters (and list items) one render "
                                  "may handle in all: what its filters, methods and operators read and build, "
                                  "and what it and its macros write.")
    max_call_depth: int = Field(default=32, ge=1, le=200, description="Nesting of macro calls and recursive "
                                "loops.")
    render_timeout_s: float = Field(default=1.0, gt=0, description="CPU time one render may take in a worker; "
                                    "the clock is read between a template's operations and loop steps.")
    estimate_timeout_s: float = Field(default=0.25, gt=0, description="CPU time one render may take for the "
                                      "ingress's cost estimate; past it the estimate counts the prompt at its "
                                      "largest (max_render_chars, ~4 characters a token) and the worker decides.")
    cpu_share: float = Field(default=0.25, gt=0, le=1, description="Share of one CPU that one tenant's renders "
                             "may use in one process, on average (bursts up to render_timeout_s); past it a "
                             "worker's render pauses, without holding the GIL, and an estimate's counts the prompt "
                             "at its largest.")
    cache_size: int = Field(default=256, ge=0, description="Compiled templates kept per process; only "
                            "templates that passed the checks are kept, least recently used evicted first.")


class Settings(BaseSettings):
    model_config = SettingsConfigDict(extra="ignore")

    redis: RedisSettings = Field(default_factory=RedisSettings)
    mongodb: MongoSettings = Field(default_factory=MongoSettings)
    llm: LLMSettings = Field(default_factory=LLMSettings)
    fleet: FleetSettings = Field(default_factory=FleetSettings)
    mcp: McpSettings = Field(default_factory=McpSettings)
    template: TemplateSettings = Field(default_factory=TemplateSettings)

    def default_model(self) -> str:
        """The tenant-less default: the configured model, else OpenAI where a key is set, else offline."""
        if self.llm.default_model:
            return self.llm.default_model
        if os.environ.get("OPENAI_API_KEY"):
            return "openai/gpt-4o-mini"
        return OFFLINE_MODEL

    @property
    def redis_url(self) -> str:
        if not self.redis.url:
            from core.errors import ConfigurationError

            raise ConfigurationError("REDIS_URL is not set; run `tenantq up` or point REDIS_URL at a Redis.")
        return self.redis.url

    @property
    def mongodb_url(self) -> str:
        if not self.mongodb.url:
            from core.errors import ConfigurationError

            raise ConfigurationError(
                "MONGODB_URL is not set; run `tenantq up` or point MONGODB_URL at a MongoDB."
            )
        return self.mongodb.url


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    return Settings()
