"""The MCP session pool over the real stdio transport, against a server that misbehaves on request."""

from __future__ import annotations

import asyncio
import io
import os
import signal
import socket
import subprocess
import sys
import textwrap
import time
import uuid
from collections.abc import Coroutine, Iterator
from pathlib import Path
from typing import Any, TypeVar

import pytest
import structlog
from pydantic import BaseModel, TypeAdapter

from core.errors import ToolError, ToolResultInvalid, ToolTimeout, ToolUnavailable
from core.logs import configure
from core.settings import McpSettings
from mcp_clients.pool import McpPool
from schemas.mcp import McpServerConfig
from tests.conftest import wait_for

pytestmark = pytest.mark.timeout(60)
T = TypeVar("T")

FAULTY_SERVER = textwrap.dedent('''
    import json, os, sys, time
    from mcp.server.mcpserver import MCPServer
    from mcp.server.mcpserver.exceptions import ToolError

    app = MCPServer("faulty", log_level="WARNING")
    LABEL = sys.argv[1] if len(sys.argv) > 1 else ""

    @app.tool(structured_output=False)
    def echo(text: str) -> str:
        return json.dumps({"text": text, "pid": os.getpid(), "label": LABEL})

    @app.tool(structured_output=False)
    def crash() -> str:
        os._exit(3)

    @app.tool(structured_output=False)
    def crash_once(marker: str) -> str:
        if not os.path.exists(marker):
            open(marker, "w").close()
            os._exit(3)
        return json.dumps({"text": "recovered", "pid": os.getpid(), "label": LABEL})

    @app.tool(structured_output=False)
    def hang() -> str:
        time.sleep(3600)
        return ""

    @app.tool(structured_output=False)
    def malformed() -> str:
        return json.dumps({"text": 42})

    @app.tool(structured_output=False)
    def fail() -> str:
        raise ToolError("the ledger is locked")

    @app.tool(structured_output=False)
    def env(name: str) -> str:
        return os.environ.get(name, "<unset>")

    @app.tool(structured_output=False)
    def shout(text: str) -> str:
        print(text, flush=True, file=sys.stderr)
        return "said"

    app.run("stdio")
''')


class Echo(BaseModel):
    text: str
    pid: int
    label: str


ECHO = TypeAdapter(Echo)


@pytest.fixture(scope="module")
def script(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("mcp") / "faulty_server.py"
    path.write_text(FAULTY_SERVER)
    return path


def faulty(script: Path, **overrides: Any) -> McpServerConfig:
    fields: dict[str, Any] = {"name": "faulty", "command": sys.executable, "args": [str(script)], "timeout_s": 10}
    return McpServerConfig(**{**fields, **overrides})


def run(coro: Coroutine[Any, Any, T]) -> T:
    return asyncio.run(coro)


def process_gone(pid: int, within: float = 8.0) -> bool:
    deadline = time.monotonic() + within
    while time.monotonic() < deadline:
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return True
        time.sleep(0.1)
    return False


def test_calls_share_one_stdio_session_across_calls(script: Path) -> None:
    async def scenario() -> tuple[list[Echo], int]:
        pool = McpPool(McpSettings())
        try:
            first = await pool.call_json(faulty(script), "echo", {"text": "a"}, ECHO)
            more = await asyncio.gather(*(pool.call_json(faulty(script), "echo", {"text": str(n)}, ECHO)
                                          for n in range(8)))
            return [first, *more], pool.started
        finally:
            await pool.aclose()

    answers, started = run(scenario())
    assert {a.pid for a in answers} == {answers[0].pid}
    assert started == 1


def test_a_server_that_crashes_mid_call_gives_a_tool_error_naming_server_and_tool_and_is_restarted(
    script: Path,
) -> None:
    async def scenario() -> tuple[ToolError, float, Echo, int]:
        pool = McpPool(McpSettings(max_attempts=2))
        try:
            before = await pool.call_json(faulty(script), "echo", {"text": "x"}, ECHO)
            started = time.monotonic()
            with pytest.raises(ToolError) as failure:
                await pool.call(faulty(script), "crash")
            elapsed = time.monotonic() - started
            after = await pool.call_json(faulty(script), "echo", {"text": "y"}, ECHO)
            assert after.pid != before.pid
            return failure.value, elapsed, after, pool.started
        finally:
            await pool.aclose()

    error, elapsed, after, started = run(scenario())
    assert isinstance(error, ToolUnavailable)
    assert error.context["server"] == "faulty" and error.context["tool"] == "crash"
    assert "'faulty'" in error.message and "'crash'" in error.message
    assert elapsed < 10
    assert after.text == "y"
    assert started == 3  # the first session, the restart for the second attempt, the next call's


def test_a_server_that_hangs_mid_call_times_out_within_its_timeout_and_the_next_call_gets_a_fresh_one(
    script: Path,
) -> None:
    async def scenario() -> tuple[ToolTimeout, float, int, Echo]:
        pool = McpPool(McpSettings())
        config = faulty(script, timeout_s=1.5)
        try:
            hung = await pool.call_json(config, "echo", {"text": "x"}, ECHO)
            started = time.monotonic()
            with pytest.raises(ToolTimeout) as failure:
                await pool.call(config, "hang")
            elapsed = time.monotonic() - started
            after = await pool.call_json(config, "echo", {"text": "y"}, ECHO)
            return failure.value, elapsed, hung.pid, after
        finally:
            await pool.aclose()

    error, elapsed, hung_pid, after = run(scenario())
    assert error.context["server"] == "faulty" and error.context["tool"] == "hang"
    assert "1.5 s" in error.message
    assert 1.4 < elapsed < 2.5
    assert after.pid != hung_pid
    assert process_gone(hung_pid)


def test_a_server_that_crashes_once_is_restarted_and_the_call_succeeds(script: Path, tmp_path: Path) -> None:
    async def scenario() -> tuple[Echo, int]:
        pool = McpPool(McpSettings(max_attempts=2))
        try:
            answer = await pool.call_json(faulty(script), "crash_once", {"marker": str(tmp_path / "m")}, ECHO)
            return answer, pool.started
        finally:
            await pool.aclose()

    answer, started = run(scenario())
    assert answer.text == "recovered"
    assert started == 2


def test_a_server_that_died_while_idle_is_restarted_by_the_next_call(script: Path) -> None:
    async def scenario() -> tuple[int, Echo]:
        pool = McpPool(McpSettings(max_attempts=2))
        try:
            first = await pool.call_json(faulty(script), "echo", {"text": "x"}, ECHO)
            os.kill(first.pid, signal.SIGKILL)
            await asyncio.sleep(0.3)
            return first.pid, await pool.call_json(faulty(script), "echo", {"text": "y"}, ECHO)
        finally:
            await pool.aclose()

    killed, after = run(scenario())
    assert after.pid != killed and after.text == "y"


def test_a_malformed_result_is_refused_before_use(script: Path) -> None:
    async def scenario() -> ToolResultInvalid:
        pool = McpPool(McpSettings())
        try:
            with pytest.raises(ToolResultInvalid) as failure:
                await pool.call_json(faulty(script), "malformed", {}, ECHO)
            return failure.value
        finally:
            await pool.aclose()

    error = run(scenario())
    assert error.context == {"server": "faulty", "tool": "malformed"}
    assert "text" in error.message and "expected shape" in error.message


def test_an_error_result_becomes_a_tool_error_carrying_the_servers_message(script: Path) -> None:
    async def scenario() -> ToolError:
        pool = McpPool(McpSettings())
        try:
            with pytest.raises(ToolError) as failure:
                await pool.call(faulty(script), "fail")
            return failure.value
        finally:
            await pool.aclose()

    error = run(scenario())
    assert type(error) is ToolError
    assert "the ledger is locked" in error.message and "'fail'" in error.message


def test_a_tool_outside_the_allowed_tools_is_refused_without_starting_the_server(script: Path) -> None:
    async def scenario() -> tuple[ToolUnavailable, int]:
        pool = McpPool(McpSettings())
        with pytest.raises(ToolUnavailable) as failure:
            await pool.call(faulty(script, allowed_tools=["echo"]), "crash")
        return failure.value, pool.started

    error, started = run(scenario())
    assert "allowed_tools" in error.message and error.context["tool"] == "crash"
    assert started == 0


def test_env_references_are_filled_from_the_worker_and_missing_ones_are_named(script: Path) -> None:
    config = faulty(script, env={"ERP_TOKEN": "${TQ_TEST_ERP_TOKEN}", "REGION": "eu-{tenant_id}"})

    async def scenario() -> tuple[str, str, ToolUnavailable]:
        pool = McpPool(McpSettings(), environ={"TQ_TEST_ERP_TOKEN": "s3cret"})
        bare = McpPool(McpSettings(), environ={})
        try:
            token = await pool.call_text(config, "env", {"name": "ERP_TOKEN"}, tenant_id="acme")
            region = await pool.call_text(config, "env", {"name": "REGION"}, tenant_id="acme")
            with pytest.raises(ToolUnavailable) as failure:
                await bare.call(config, "echo", {"text": "x"}, tenant_id="acme")
            return token, region, failure.value
        finally:
            await pool.aclose()

    token, region, error = run(scenario())
    assert token == "s3cret" and region == "eu-acme"
    assert "TQ_TEST_ERP_TOKEN" in error.message and "s3cret" not in error.message


def test_what_a_stdio_server_writes_to_stderr_is_logged_by_the_worker_redacted(
    script: Path, monkeypatch: pytest.MonkeyPatch,
) -> None:
    secret, address = f"plain{uuid.uuid4().hex}", f"jörg.müller.{uuid.uuid4().hex[:6]}@bücher.de"
    monkeypatch.setenv("TQ_TEST_SHOUT_TOKEN", secret)
    config = faulty(script, env={"SHOUT_TOKEN": "${TQ_TEST_SHOUT_TOKEN}"})
    stream = io.StringIO()
    configure("INFO")  # learns the environment's secrets, as a worker does when it starts
    structlog.configure(logger_factory=structlog.PrintLoggerFactory(stream))

    async def scenario() -> None:
        pool = McpPool(McpSettings())
        try:
            await pool.call_text(config, "shout", {"text": f"starting with {secret} for {address}"})
            await pool.call_text(config, "env", {"name": "SHOUT_TOKEN"})  # the server holds the real value
        finally:
            await pool.aclose()

    try:
        run(scenario())
        wait_for(lambda: "mcp.server_stderr" in stream.getvalue(), timeout=10)
    finally:
        structlog.reset_defaults()
    logged = stream.getvalue()
    assert "server=faulty" in logged and "starting with <redacted> for <email:" in logged, logged
    assert secret not in logged and address not in logged


def test_a_tenant_scoped_registration_starts_one_server_per_tenant(script: Path) -> None:
    config = faulty(script, args=[str(script), "{tenant_id}"])

    async def scenario() -> list[Echo]:
        pool = McpPool(McpSettings())
        try:
            return [await pool.call_json(config, "echo", {"text": "x"}, ECHO, tenant_id=t)
                    for t in ("acme", "globex", "acme")]
        finally:
            await pool.aclose()

    acme, globex, again = run(scenario())
    assert (acme.label, globex.label) == ("acme", "globex")
    assert acme.pid != globex.pid and again.pid == acme.pid


def test_a_server_that_cannot_start_is_reported_with_its_name() -> None:
    async def scenario() -> ToolUnavailable:
        pool = McpPool(McpSettings())
        with pytest.raises(ToolUnavailable) as failure:
            await pool.call(McpServerConfig(name="ghost", command="/nonexistent/ghost-mcp"), "anything")
        return failure.value

    error = run(scenario())
    assert error.context["server"] == "ghost" and "could not be started" in error.message


HTTP_SERVER = textwrap.dedent('''
    import json, sys
    from mcp.server.mcpserver import Context, MCPServer

    app = MCPServer("http-echo", log_level="WARNING")

    @app.tool(structured_output=False)
    def whoami(ctx: Context) -> str:
        request = ctx.request_context.request
        return json.dumps({"authorization": request.headers.get("authorization") if request else None})

    app.run("streamable-http", host="127.0.0.1", port=int(sys.argv[1]))
''')


@pytest.fixture(scope="module")
def http_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    path = tmp_path_factory.mktemp("mcp-http") / "http_server.py"
    path.write_text(HTTP_SERVER)
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    server = subprocess.Popen([sys.executable, str(path), str(port)], stdout=subprocess.DEVNULL,
                              stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            with socket.socket() as conn:
                if conn.connect_ex(("127.0.0.1", port)) == 0:
                    break
            time.sleep(0.1)
        yield f"http://127.0.0.1:{port}/mcp"
    finally:
        server.terminate()
        server.wait(10)


def test_a_streamable_http_server_is_called_with_headers_from_the_worker_environment(http_url: str) -> None:
    config = McpServerConfig(name="web", transport="http", url=http_url, timeout_s=10,
                             headers={"Authorization": "Bearer ${TQ_TEST_WEB_KEY}"})

    async def scenario() -> tuple[str, list[str]]:
        pool = McpPool(McpSettings(), environ={"TQ_TEST_WEB_KEY": "k-123"})
        try:
            return await pool.call_text(config, "whoami"), await pool.list_tools(config)
        finally:
            await pool.aclose()

    answer, tools = run(scenario())
    assert '"Bearer k-123"' in answer
    assert tools == ["whoami"]


def test_an_unreachable_http_server_is_reported_with_the_cause() -> None:
    async def scenario() -> ToolUnavailable:
        pool = McpPool(McpSettings())
        with pytest.raises(ToolUnavailable) as failure:
            await pool.call(McpServerConfig(name="down", transport="http", url="http://127.0.0.1:9/mcp",
                                            timeout_s=5), "whoami")
        return failure.value

    error = run(scenario())
    assert error.context["server"] == "down" and "ConnectError" in error.message
