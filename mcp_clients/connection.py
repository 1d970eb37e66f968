"""One live MCP session, owned by a task of its own.

The SDK's transports are anyio task groups, which must be entered and left by the same task. A job's task
cannot own a session that outlives the job, so each connection gets an owner task: it opens the client,
parks until asked to close, and closes it. Calls from any task on the loop share the session; closing never
blocks a caller, because stopping a hung stdio server takes the SDK a few seconds of grace and kill.

A stdio server's stderr never reaches the worker's output raw: it is a pipe whose lines the worker logs
(`mcp.server_stderr`), redacted like its own, so a server that prints its key or a lead's address does
not put them in the log.
"""

from __future__ import annotations

import asyncio
import time
from contextlib import AsyncExitStack

import structlog
from mcp import Client

from core.errors import ToolUnavailable
from core.logs import ChildStderr
from mcp_clients.transports import Target, open_client
from schemas.mcp import McpTransport

log = structlog.get_logger("tenantq.mcp")


class Connection:
    def __init__(self, target: Target) -> None:
        self.target = target
        self.started_at = time.monotonic()
        self.last_used = self.started_at
        self.in_flight = 0
        self.tools: list[str] | None = None
        self._client: Client | None = None
        self._failure: BaseException | None = None
        self._ready = asyncio.Event()
        self._closing = asyncio.Event()
        self._task: asyncio.Task[None] | None = None

    @property
    def alive(self) -> bool:
        return self._client is not None and not self._closing.is_set()

    @property
    def client(self) -> Client:
        if self._client is None or self._closing.is_set():
            raise ToolUnavailable(f"MCP server {self.target.server!r} is not connected.", server=self.target.server)
        return self._client

    async def open(self) -> None:
        """Start the owner task and wait for the handshake; a cancelled wait stops the half-open session."""
        self._task = asyncio.create_task(self._own(), name=f"mcp:{self.target.server}")
        try:
            await self._ready.wait()
        except asyncio.CancelledError:
            self._task.cancel()
            raise
        if self._client is None:
            reason = _describe(self._failure) if self._failure else "it exited"
            raise ToolUnavailable(
                f"MCP server {self.target.server!r} could not be started or reached ({reason}); check its "
                "registration (command, args, url) and its log.", server=self.target.server,
            )

    async def _own(self) -> None:
        stderr = (ChildStderr("mcp.server_stderr", server=self.target.server)
                  if self.target.transport is McpTransport.stdio else None)
        try:
            async with AsyncExitStack() as stack:
                self._client = await open_client(self.target, stack, stderr.file if stderr else None)
                if stderr:
                    stderr.close()  # the server holds its own end; the reader ends when the server does
                self._ready.set()
                await self._closing.wait()
        # The owner task is the boundary of the session: whatever the SDK raised ends it, and the waiting
        # caller reports it with the server's name.
        except Exception as exc:  # noqa: BLE001
            self._failure = exc
            log.warning("mcp.session_failed", server=self.target.server, error=repr(exc))
        finally:
            if stderr:
                stderr.close()
            self._client = None
            self._closing.set()
            self._ready.set()

    def close(self) -> asyncio.Task[None] | None:
        """Ask the owner task to end the session; returns the task to await for a tidy shutdown."""
        self._closing.set()
        return self._task

    async def aclose(self, timeout: float = 10.0) -> None:
        task = self.close()
        if task is not None and not task.done():
            try:
                await asyncio.wait_for(asyncio.shield(task), timeout)
            except TimeoutError:
                task.cancel()


def _describe(exc: BaseException) -> str:
    """The root causes, not the SDK's task-group wrapper around them."""
    if isinstance(exc, BaseExceptionGroup):
        return "; ".join(_describe(inner) for inner in exc.exceptions)
    return f"{type(exc).__name__}: {exc}"
