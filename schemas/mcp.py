"""MCP tool servers as registered in the master database (collection `mcp_servers`, `_id` = name).

Secrets are never stored here. A value in `env` or `headers` may hold `${VAR}` references, resolved from the
worker's environment when the server is started; anything else is a literal. Keys that name a secret (KEY,
TOKEN, SECRET, PASSWORD, CREDENTIAL, AUTHORIZATION) must hold a reference, so a pasted key is refused at
registration instead of landing in the database. A reference anywhere else (`command`, `args`, `url`) is
refused too: a command line and a URL end up in process listings, server logs and error messages, where an
expanded key would be written raw. `{tenant_id}` in `args`, `env`, `url` or `headers` is the
id of the tenant whose job starts the server, so one registration serves every tenant with its own process.
"""

from __future__ import annotations

import re
from enum import StrEnum

from pydantic import BaseModel, ConfigDict, Field, ValidationInfo, field_validator, model_validator

ENV_REFERENCE_RE = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)\}")
TENANT_PLACEHOLDER = "{tenant_id}"
_SECRET_NAME_RE = re.compile(r"KEY|TOKEN|SECRET|PASSWORD|PASSWD|CREDENTIAL|AUTHORIZATION", re.IGNORECASE)


class McpTransport(StrEnum):
    stdio = "stdio"
    http = "http"


def _refuse_literal_secrets(values: dict[str, str], what: str) -> dict[str, str]:
    for key, value in values.items():
        if _SECRET_NAME_RE.search(key) and not ENV_REFERENCE_RE.search(value):
            raise ValueError(
                f"{what} {key!r} looks like a secret but holds a literal value; store a reference such as "
                f"'${{{key.upper().replace('-', '_')}}}' and set that variable in the workers' environment"
            )
    return values


def _refuse_references(values: list[str], where: str) -> None:
    for value in values:
        found = ENV_REFERENCE_RE.search(value)
        if found:
            raise ValueError(
                f"{where} holds the environment reference {found.group(0)!r}, but references are resolved only "
                "in env values (stdio) and headers (http): pass the value to the server through env, e.g. "
                f"env {{\"{found.group(1)}\": \"{found.group(0)}\"}}, and read it there"
            )


class McpServerConfig(BaseModel):
    """One MCP server: how to reach it, which of its tools may be called, and how long a call may take."""

    model_config = ConfigDict(extra="forbid")

    name: str = Field(pattern=r"^[a-z0-9][a-z0-9_-]{0,62}$", description="Registry key; agents name it.")
    transport: McpTransport = McpTransport.stdio
    command: str | None = Field(default=None, min_length=1, description="stdio: the executable to start.")
    args: list[str] = Field(default_factory=list, description="stdio: its arguments; may use {tenant_id}.")
    env: dict[str, str] = Field(
        default_factory=dict,
        description="stdio: extra environment; values are literals or ${VAR} references to worker variables.",
    )
    url: str | None = Field(default=None, description="http: the streamable HTTP endpoint.")
    headers: dict[str, str] = Field(default_factory=dict, description="http: headers, same rules as env.")
    allowed_tools: list[str] = Field(default_factory=list, description="Tools that may be called; empty: all.")
    timeout_s: float | None = Field(
        default=None, gt=0, le=3600, description="Deadline of one call; unset: TENANTQ_MCP_CALL_TIMEOUT_S."
    )

    @field_validator("command", "url")
    @classmethod
    def _no_reference(cls, value: str | None, info: ValidationInfo) -> str | None:
        if value is not None:
            _refuse_references([value], info.field_name or "")
        return value

    @field_validator("args")
    @classmethod
    def _no_reference_in_args(cls, value: list[str]) -> list[str]:
        _refuse_references(value, "args")
        return value

    @field_validator("env")
    @classmethod
    def _env_holds_no_secret(cls, value: dict[str, str]) -> dict[str, str]:
        return _refuse_literal_secrets(value, "Environment variable")

    @field_validator("headers")
    @classmethod
    def _headers_hold_no_secret(cls, value: dict[str, str]) -> dict[str, str]:
        return _refuse_literal_secrets(value, "Header")

    @model_validator(mode="after")
    def _transport_fields_match(self) -> McpServerConfig:
        if self.transport is McpTransport.stdio and (not self.command or self.url):
            raise ValueError("a stdio server needs a command and no url")
        http_ok = bool(self.url and re.match(r"^https?://", self.url)) and not self.command
        if self.transport is McpTransport.http and not http_ok:
            raise ValueError("an http server needs an http(s) url and no command")
        return self

    def env_references(self) -> list[str]:
        """The worker environment variables this server needs, in order of first use."""
        texts = [*self.env.values(), *self.headers.values()]
        return list(dict.fromkeys(m.group(1) for text in texts for m in ENV_REFERENCE_RE.finditer(text)))

    @property
    def tenant_scoped(self) -> bool:
        """True when each tenant gets its own session (the registration mentions {tenant_id})."""
        texts = [*self.args, *self.env.values(), self.url or "", *self.headers.values()]
        return any(TENANT_PLACEHOLDER in text for text in texts)

    def allows(self, tool: str) -> bool:
        return not self.allowed_tools or tool in self.allowed_tools
