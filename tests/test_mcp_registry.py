"""MCP server registrations in the master database, against the nx-27017 MongoDB wire server."""

from __future__ import annotations

import shutil
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from pydantic import ValidationError
from pymongo import MongoClient
from pymongo.database import Database
from pymongo.errors import PyMongoError

from core.errors import ConfigurationError, ToolUnavailable
from mcp_clients.registry import (
    COLLECTION,
    bundled_erp_server,
    load_servers,
    register_server,
    unregister_server,
)
from schemas.mcp import McpServerConfig

pytestmark = pytest.mark.timeout(60)


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


@pytest.fixture(scope="module")
def mongo(tmp_path_factory: pytest.TempPathFactory) -> Iterator[MongoClient[dict[str, Any]]]:
    base = tmp_path_factory.mktemp("nx")
    port = _free_port()
    executable = shutil.which("nx-27017") or str(Path(sys.executable).with_name("nx-27017"))
    server = subprocess.Popen(
        [executable, "--data-dir", str(base / "data"), "-p", str(port), "--log-file", str(base / "nx.log"),
         "--pid-file", str(base / "nx.pid")],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )
    client: MongoClient[dict[str, Any]] = MongoClient(f"mongodb://127.0.0.1:{port}", serverSelectionTimeoutMS=20_000)
    try:
        deadline = time.monotonic() + 20
        while True:
            try:
                client.admin.command("ping")
                break
            except PyMongoError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.2)
        yield client
    finally:
        client.close()
        server.terminate()
        server.wait(10)


@pytest.fixture
def db(mongo: MongoClient[dict[str, Any]]) -> Database[dict[str, Any]]:
    return mongo[f"tq-master-{uuid.uuid4().hex[:8]}"]


def test_registered_servers_load_in_the_order_the_agent_names_them(db: Database[dict[str, Any]]) -> None:
    register_server(db, bundled_erp_server(records=2_000, seed=3))
    register_server(db, McpServerConfig(name="perplexity", command="npx", args=["-y", "server-perplexity-ask"],
                                        env={"PERPLEXITY_API_KEY": "${PERPLEXITY_API_KEY}"}))
    loaded = load_servers(db, ["perplexity", "erp", "perplexity"])
    assert [c.name for c in loaded] == ["perplexity", "erp"]
    assert loaded[0].env == {"PERPLEXITY_API_KEY": "${PERPLEXITY_API_KEY}"}
    assert loaded[1] == bundled_erp_server(records=2_000, seed=3)
    stored = db[COLLECTION].find_one({"_id": "erp"})
    assert stored is not None and "{tenant_id}" in stored["args"] and "name" not in stored


def test_a_server_nobody_registered_is_named_in_the_error(db: Database[dict[str, Any]]) -> None:
    register_server(db, bundled_erp_server())
    with pytest.raises(ToolUnavailable) as failure:
        load_servers(db, ["erp", "sap-adt"])
    assert "'sap-adt'" in failure.value.message and "'erp'" not in failure.value.message


def test_a_broken_registration_is_reported_with_the_server_name(db: Database[dict[str, Any]]) -> None:
    db[COLLECTION].insert_one({"_id": "half", "transport": "http"})
    with pytest.raises(ConfigurationError) as failure:
        load_servers(db, ["half"])
    assert "'half'" in failure.value.message and "url" in failure.value.message


def test_a_registration_can_be_replaced_and_removed(db: Database[dict[str, Any]]) -> None:
    register_server(db, bundled_erp_server(timeout_s=30))
    register_server(db, bundled_erp_server(timeout_s=90))
    assert load_servers(db, ["erp"])[0].timeout_s == 90
    assert unregister_server(db, "erp") and not unregister_server(db, "erp")


@pytest.mark.parametrize("field, value", [
    ("env", {"PERPLEXITY_API_KEY": "pplx-1234"}),
    ("headers", {"Authorization": "Bearer sk-live-1234"}),
])
def test_a_literal_secret_cannot_be_registered(field: str, value: dict[str, str]) -> None:
    spec: dict[str, Any] = {"name": "leaky", "command": "npx"} if field == "env" else {
        "name": "leaky", "transport": "http", "url": "https://mcp.example.com/mcp"}
    with pytest.raises(ValidationError) as failure:
        McpServerConfig(**spec, **{field: value})
    assert "${" in str(failure.value)


@pytest.mark.parametrize("field, value", [
    ("args", ["--key", "${OPENAI_API_KEY}"]),
    ("command", "${TOOLS_DIR}/server"),
    ("url", "https://mcp.example.com/mcp?token=${MCP_TOKEN}"),
])
def test_an_environment_reference_outside_env_and_headers_is_refused_naming_where_they_belong(
    field: str, value: Any,
) -> None:
    spec: dict[str, Any] = {"name": "leaky", "command": "npx"} if field != "url" else {
        "name": "leaky", "transport": "http"}
    with pytest.raises(ValidationError) as failure:
        McpServerConfig(**{**spec, field: value})
    message = str(failure.value)
    assert field in message and "only in env values (stdio) and headers (http)" in message, message


def test_a_stored_registration_with_a_reference_in_its_args_is_refused_when_loaded(
    db: Database[dict[str, Any]],
) -> None:
    db[COLLECTION].insert_one({"_id": "old", "command": "npx", "args": ["--key=${OPENAI_API_KEY}"]})
    with pytest.raises(ConfigurationError) as failure:
        load_servers(db, ["old"])
    assert "'old'" in failure.value.message and "env" in failure.value.message
