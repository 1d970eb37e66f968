"""MCP sessions kept open across jobs in a worker process, with deadlines, retries and restarts.

Sessions are keyed by server name (and tenant, for registrations that start one process per tenant) and
live on the process loop of `core.aio`. A call has one deadline for everything it does (connecting,
restarting, retrying), so a caller never waits longer than the server's `timeout_s`. A server that closes
the connection is restarted and the call retried, up to `TENANTQ_MCP_MAX_ATTEMPTS` attempts in all (a
session that died while idle costs one, as that only shows when it is used). A server that does not answer
in time is stopped (in the background) and started afresh by the next call, because a session with a
request stuck in it cannot be trusted with the next one.
"""

from __future__ import annotations

import asyncio
import os
import threading
from collections.abc import Awaitable, Callable, Mapping
from typing import Any, TypeVar

import mcp_types
import structlog
from mcp import Client, MCPError
from pydantic import TypeAdapter, ValidationError

from core.errors import ToolError, ToolResultInvalid, ToolTimeout, ToolUnavailable
from core.settings import McpSettings, get_settings
from mcp_clients.connection import Connection
from mcp_clients.results import checked, parse_json, text_of
from mcp_clients.transports import Target, resolve
from schemas.mcp import McpServerConfig

T = TypeVar("T")
Key = tuple[str, str]
log = structlog.get_logger("tenantq.mcp")


class McpPool:
    """Open sessions by server; use it only from one event loop (the process loop in production)."""

    def __init__(self, settings: McpSettings | None = None, *, environ: Mapping[str, str] | None = None,
                 max_sessions: int = 32) -> None:
        self.settings = settings or get_settings().mcp
        self._environ = environ
        self._max_sessions = max_sessions
        self._connections: dict[Key, Connection] = {}
        self._locks: dict[Key, asyncio.Lock] = {}
        self._closing: set[asyncio.Task[None]] = set()
        self.started = 0
        """Sessions started so far: the first start of each server and every restart."""

    def timeout_for(self, config: McpServerConfig, override: float | None = None) -> float:
        return override or config.timeout_s or self.settings.call_timeout_s

    async def call(self, config: McpServerConfig, tool: str, arguments: dict[str, Any] | None = None, *,
                   tenant_id: str | None = None, timeout_s: float | None = None) -> mcp_types.CallToolResult:
        """Call a tool; a result the server marks as an error raises ToolError."""
        if not config.allows(tool):
            raise ToolUnavailable(
                f"Tool {tool!r} of MCP server {config.name!r} is not in the server's allowed_tools; add it to "
                "the registration to use it.", server=config.name, tool=tool,
            )
        result = await self._run(config, tool, tenant_id, timeout_s,
                                 lambda client: client.call_tool(tool, arguments or {}))
        return checked(result, config.name, tool)

    async def call_json(self, config: McpServerConfig, tool: str, arguments: dict[str, Any] | None,
                        adapter: TypeAdapter[T], *, tenant_id: str | None = None,
                        timeout_s: float | None = None) -> T:
        """Call a tool whose result is JSON and validate it before anyone uses it."""
        result = await self.call(config, tool, arguments, tenant_id=tenant_id, timeout_s=timeout_s)
        return parse_json(result, adapter, config.name, tool)

    async def call_text(self, config: McpServerConfig, tool: str, arguments: dict[str, Any] | None = None, *,
                        tenant_id: str | None = None, timeout_s: float | None = None) -> str:
        result = await self.call(config, tool, arguments, tenant_id=tenant_id, timeout_s=timeout_s)
        return text_of(result, config.name, tool)

    async def list_tools(self, config: McpServerConfig, *, tenant_id: str | None = None,
                         timeout_s: float | None = None) -> list[str]:
        """The tools the server offers that its registration allows (cached per session)."""

        async def fetch(client: Client) -> list[str]:
            listing = await client.list_tools()
            return [tool.name for tool in listing.tools]

        names = await self._run(config, "tools/list", tenant_id, timeout_s, fetch)
        return [name for name in names if config.allows(name)]

    async def _started(self, key: Key, target: Target, config: McpServerConfig, tool: str) -> Connection:
        """The session of `key`, started if need be within TENANTQ_MCP_START_TIMEOUT_S: a server's start
        (a process importing its SDK, a handshake) is not part of any tool call's timeout."""
        limit = self.settings.start_timeout_s
        try:
            async with asyncio.timeout(limit):
                return await self._connection(key, target)
        except TimeoutError:
            log.warning("mcp.start_timeout", server=config.name, tool=tool, timeout_s=limit)
            raise ToolUnavailable(
                f"MCP server {config.name!r} did not start within {limit:g} s for {tool!r}: check its command "
                "and its log, or raise TENANTQ_MCP_START_TIMEOUT_S.", server=config.name, tool=tool,
            ) from None

    async def _run(self, config: McpServerConfig, tool: str, tenant_id: str | None, timeout_s: float | None,
                   op: Callable[[Client], Awaitable[T]]) -> T:
        target = resolve(config, tenant_id, self._environ if self._environ is not None else os.environ)
        key: Key = (config.name, (tenant_id or "") if config.tenant_scoped else "")
        budget = self.timeout_for(config, timeout_s)
        loop = asyncio.get_running_loop()
        failures = 0
        while True:
            conn: Connection | None = None
            try:
                conn = await self._started(key, target, config, tool)
                async with asyncio.timeout_at(loop.time() + budget):  # each attempt's budget, once its server is up
                    conn.in_flight += 1
                    try:
                        return await op(conn.client)
                    finally:
                        conn.in_flight -= 1
                        conn.last_used = loop.time()
            except TimeoutError:
                if conn is not None:
                    self._discard(key, conn)
                log.warning("mcp.call_timeout", server=config.name, tool=tool, timeout_s=budget)
                raise ToolTimeout(
                    f"MCP server {config.name!r} did not answer {tool!r} within {budget:g} s. The server was "
                    "stopped and is started afresh on the next call; if the tool is just slow, raise timeout_s "
                    "in its registration.", server=config.name, tool=tool, timeout_s=budget,
                ) from None
            except ValidationError as exc:
                raise ToolResultInvalid(
                    f"MCP server {config.name!r} answered {tool!r} with a message that is not valid MCP: "
                    f"{exc.error_count()} error(s), first at {_where(exc)}.", server=config.name, tool=tool,
                ) from exc
            except MCPError as exc:
                if exc.code != mcp_types.CONNECTION_CLOSED:
                    raise ToolError(
                        f"MCP server {config.name!r} refused {tool!r}: {exc.message} (code {exc.code}). Check the "
                        "tool name and arguments against the server's tool list.",
                        server=config.name, tool=tool,
                    ) from exc
                if conn is not None:
                    self._discard(key, conn)
                failures += 1
                log.warning("mcp.connection_lost", server=config.name, tool=tool, failures=failures)
                if failures >= self.settings.max_attempts:
                    raise ToolUnavailable(
                        f"MCP server {config.name!r} closed the connection during {tool!r} {failures} time(s): "
                        "the server process crashed or exited. See its log; the next call starts it again.",
                        server=config.name, tool=tool, attempts=failures,
                    ) from exc

    async def _connection(self, key: Key, target: Target) -> Connection:
        """The live session for `key`, started (or restarted) if there is none."""
        lock = self._locks.setdefault(key, asyncio.Lock())
        async with lock:
            conn = self._connections.get(key)
            if conn is not None and conn.alive and conn.target.fingerprint == target.fingerprint:
                return conn
            if conn is not None:
                self._discard(key, conn)
            self._evict_idle()
            conn = Connection(target)
            await conn.open()
            self._connections[key] = conn
            self.started += 1
            return conn

    def _discard(self, key: Key, conn: Connection) -> None:
        if self._connections.get(key) is conn:
            del self._connections[key]
        task = conn.close()
        if task is not None and not task.done():
            self._closing.add(task)
            task.add_done_callback(self._closing.discard)

    def _evict_idle(self) -> None:
        while len(self._connections) >= self._max_sessions:
            idle = [(c.last_used, k) for k, c in self._connections.items() if c.in_flight == 0]
            if not idle:
                return
            _, key = min(idle)
            self._discard(key, self._connections[key])

    def sessions(self) -> dict[Key, Connection]:
        return dict(self._connections)

    async def aclose(self) -> None:
        """Close every session and wait for the servers to stop."""
        for key, conn in list(self._connections.items()):
            self._discard(key, conn)
        if self._closing:
            await asyncio.gather(*self._closing, return_exceptions=True)


def _where(exc: ValidationError) -> str:
    first = exc.errors()[0]
    return ".".join(str(part) for part in first["loc"]) or "the top level"


_lock = threading.Lock()
_pool: McpPool | None = None
_pool_pid: int | None = None


def default_pool() -> McpPool:
    """The process's pool; a forked child starts its own (sessions are pipes of the parent)."""
    global _pool, _pool_pid
    with _lock:
        if _pool is None or _pool_pid != os.getpid():
            _pool, _pool_pid = McpPool(), os.getpid()
        return _pool
