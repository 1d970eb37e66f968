"""From a registration to a connected SDK client: placeholders, environment references, and the transport.

A registration is shared by tenants and holds no secrets; a `Target` is what one session actually starts:
`{tenant_id}` filled in and the `${VAR}` references of env values and headers read from the worker's
environment at that moment, so a rotated key takes effect on the next restart and never passes through the
database. References are expanded nowhere else (command, args, url), as the registration refuses them there.
"""

from __future__ import annotations

import hashlib
import json
import sys
from collections.abc import Mapping
from contextlib import AsyncExitStack
from dataclasses import dataclass, field
from typing import Any, TextIO

import httpx2
from mcp import Client
from mcp.client.stdio import StdioServerParameters, stdio_client
from mcp.client.streamable_http import streamable_http_client

from core.errors import ToolUnavailable
from schemas.mcp import ENV_REFERENCE_RE, TENANT_PLACEHOLDER, McpServerConfig, McpTransport


def missing_env(config: McpServerConfig, environ: Mapping[str, str]) -> list[str]:
    """The environment variables the server needs that are unset (or empty) in this worker."""
    return [name for name in config.env_references() if not environ.get(name)]


@dataclass(frozen=True)
class Target:
    """One server, resolved for one tenant: exactly what a session starts."""

    server: str
    transport: McpTransport
    command: str | None = None
    args: tuple[str, ...] = ()
    env: Mapping[str, str] = field(default_factory=dict)
    url: str | None = None
    headers: Mapping[str, str] = field(default_factory=dict)

    @property
    def fingerprint(self) -> str:
        """Changes when anything the session depends on changes, so a re-registration restarts it."""
        raw = json.dumps([self.transport, self.command, self.args, dict(self.env), self.url, dict(self.headers)])
        return hashlib.sha256(raw.encode()).hexdigest()[:16]


def resolve(config: McpServerConfig, tenant_id: str | None, environ: Mapping[str, str]) -> Target:
    """Fill in the tenant and the referenced environment variables, or say which are missing."""
    missing = missing_env(config, environ)
    if missing:
        raise ToolUnavailable(
            f"MCP server {config.name!r} needs the environment variable(s) {', '.join(missing)}, which are not "
            "set in this worker; set them in the workers' environment or remove the server from the agent.",
            server=config.name,
        )
    if config.tenant_scoped and not tenant_id:
        raise ToolUnavailable(
            f"MCP server {config.name!r} is registered per tenant ({TENANT_PLACEHOLDER}) but was called "
            "without a tenant id.", server=config.name,
        )

    def tenant(text: str) -> str:
        return text.replace(TENANT_PLACEHOLDER, tenant_id or "")

    def fill(text: str) -> str:  # env values and headers only: the places references are documented
        return ENV_REFERENCE_RE.sub(lambda m: environ[m.group(1)], tenant(text))

    return Target(
        server=config.name, transport=config.transport, command=config.command,
        args=tuple(tenant(a) for a in config.args), env={k: fill(v) for k, v in config.env.items()},
        url=tenant(config.url) if config.url else None, headers={k: fill(v) for k, v in config.headers.items()},
    )


async def open_client(target: Target, stack: AsyncExitStack, errlog: TextIO | None = None) -> Client:
    """Start (stdio) or reach (http) the server and finish the MCP handshake; `stack` owns the session.
    A stdio server's stderr goes to `errlog` (a real file: the child writes to its descriptor)."""
    server: Any
    if target.transport is McpTransport.stdio:
        params = StdioServerParameters(command=target.command or "", args=list(target.args), env=dict(target.env))
        server = stdio_client(params, errlog=errlog or sys.stderr)
    else:
        http = await stack.enter_async_context(
            httpx2.AsyncClient(headers=dict(target.headers), timeout=httpx2.Timeout(30.0, read=300.0))
        )
        server = streamable_http_client(target.url or "", http_client=http)
    return await stack.enter_async_context(Client(server))
