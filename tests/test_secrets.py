"""Secrets and lead addresses stay out of every log line of every process, and out of stored errors: real
worker and ingress processes, a real stdio MCP server, the loopback provider quoting what it was sent."""

from __future__ import annotations

import re
import signal
import subprocess
import sys
import textwrap
import uuid
from pathlib import Path
from typing import Any

import httpx
import pytest

from core.logs import mask_email
from mcp_clients.erp_contract import DESCRIBE_TOOL, READ_TOOL
from schemas.agents import AgentSettings, ModelConfig
from tenantq.localfleet import LocalFleet
from tenantq.services import free_port
from tests.conftest import TEST_ENV, command_env, wait_for

pytestmark = pytest.mark.timeout(180)

PROBE_SECRET = TEST_ENV["TQ_PROBE_API_KEY"]

NOISY_ERP_SERVER = textwrap.dedent('''
    import os, sys
    from mcp_clients.erp_server.server import main

    print(f"erp starting with key {os.environ['NOISY_API_KEY']} for {os.environ['CONTACT']}", file=sys.stderr,
          flush=True)
    main(sys.argv[1], 1_000, 1)
''')


def masked(address: str) -> str:
    match = re.fullmatch(r".+", address)
    assert match is not None
    return mask_email(match)


def bearer(key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}


def every_log(fleet: LocalFleet) -> str:
    """Every log file of every process the session's fleet started."""
    return "\n".join(path.read_text(errors="replace") for path in sorted(fleet.log_dir.rglob("*"))
                     if path.is_file())


def finished(api: Any, key: str, job_id: str, timeout: float = 60) -> dict[str, Any]:
    def ended() -> dict[str, Any] | None:
        job: dict[str, Any] = api.get(f"/v1/jobs/{job_id}", headers=bearer(key)).json()
        return job if job["status"] in ("succeeded", "failed") else None

    found: dict[str, Any] = wait_for(ended, timeout=timeout, interval=0.2)
    return found


def test_a_provider_error_quoting_a_lead_is_stored_and_logged_without_the_address_or_any_key(
    api: Any, worker: Any, make_tenant: Any, loopback: Any, fleet: LocalFleet,
) -> None:
    from tenancy.mongo import tenant_db
    from tenancy.registry import register_model

    address, local = f"jörg.müller.{uuid.uuid4().hex[:6]}@bücher.de", f"admin{uuid.uuid4().hex[:6]}@localhost"
    model = f"q-{uuid.uuid4().hex[:6]}"
    loopback.control(model=model, always_fail_status=400, error_quotes_prompt=True)
    register_model(ModelConfig(name=model, model=f"openai/{model}", api_base=loopback.api_base,
                               api_key_env="LOOPBACK_API_KEY"))
    tenant_id, key = make_tenant("quote", agent=AgentSettings(model=model))
    email = {"from": address, "to": local, "subject": f"{address} cc {local}",
             "body": f"My key is {PROBE_SECRET}, and yours {key}.", "message_id": f"<{uuid.uuid4().hex}@x.example>",
             "lead_id": "lead-q"}
    accepted = api.post("/v1/jobs", json={"kind": "email_reply", "payload": email}, headers=bearer(key))
    assert accepted.status_code == 202, accepted.text

    job = finished(api, key, accepted.json()["job_id"])
    assert job["status"] == "failed" and job["error"]["code"] == "provider_rejected", job
    detail = job["error"]["detail"]
    assert "refused because of this text" in detail, "the provider's words are kept..."
    assert masked(address) in detail and masked(local) in detail, "...with the addresses masked"
    record = tenant_db(tenant_id).executions.find_one({"_id": job["job_id"]})
    assert record is not None
    stored = str(record["error"])  # the payload is the tenant's own data, kept as sent
    for raw in (address, local, PROBE_SECRET, key):
        assert raw not in stored, f"{raw!r} is stored raw in the job's error"

    logs = wait_for(lambda: (text := every_log(fleet)) and job["job_id"] in text and text)
    assert masked(address) in logs, "the provider's words are logged, masked"
    for raw in (address, local, PROBE_SECRET, key, "sk-loopback-test", TEST_ENV["TENANTQ_ADMIN_TOKEN"]):
        assert raw not in logs, f"{raw!r} is in a log"


def test_an_mcp_servers_stderr_reaches_the_worker_log_redacted(
    api: Any, worker: Any, make_tenant: Any, fleet: LocalFleet, tmp_path: Path,
) -> None:
    from mcp_clients.registry import register_server, unregister_server
    from schemas.mcp import McpServerConfig
    from tenancy.mongo import master_db

    script = tmp_path / "noisy_erp_server.py"
    script.write_text(NOISY_ERP_SERVER)
    address = f"einkauf.{uuid.uuid4().hex[:6]}@bücher.de"
    server = McpServerConfig(
        name=f"noisy-{uuid.uuid4().hex[:6]}", command=sys.executable, args=[str(script), "{tenant_id}"],
        env={"NOISY_API_KEY": "${TQ_PROBE_API_KEY}", "CONTACT": address},
        allowed_tools=[DESCRIBE_TOOL, READ_TOOL], timeout_s=60)
    register_server(master_db(), server)
    try:
        _, key = make_tenant("noisy", template_id="erp-analyst", agent=AgentSettings(mcp_servers=[server.name]))
        payload = {"prompt": "Where is stock stuck?", "categories": ["inventory"], "quick": True}
        accepted = api.post("/v1/jobs", json={"kind": "erp_analysis", "payload": payload}, headers=bearer(key))
        assert accepted.status_code == 202, accepted.text
        job = finished(api, key, accepted.json()["job_id"], timeout=120)
        assert job["status"] == "succeeded", job["error"]
    finally:
        unregister_server(master_db(), server.name)

    line = wait_for(lambda: next((line for line in worker.log.read_text(errors="replace").splitlines()
                                  if "mcp.server_stderr" in line and server.name in line), None))
    assert f"erp starting with key <redacted> for {masked(address)}" in line, line
    logs = every_log(fleet)
    assert PROBE_SECRET not in logs and address not in logs


def test_the_ingress_logs_request_paths_with_tokens_and_addresses_masked(
    services: dict[str, str], tmp_path: Path,
) -> None:
    admin_token, query_token = f"adm{uuid.uuid4().hex}", f"qt{uuid.uuid4().hex}"
    address = f"jörg.{uuid.uuid4().hex[:6]}@bücher.de"
    port = free_port()
    out = tmp_path / "ingress.log"
    env = command_env({**services, "TENANTQ_ADMIN_TOKEN": admin_token})
    with out.open("w") as sink:
        ingress = subprocess.Popen(
            [sys.executable, "-m", "tenantq", "ingress", "--port", str(port), "--log-level", "info"],
            env=env, stdout=sink, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    try:
        wait_for(lambda: _answers(f"{url}/healthz") or ingress.poll() is not None, timeout=60, interval=0.2)
        assert ingress.poll() is None, out.read_text()
        assert httpx.get(f"{url}/healthz", params={"token": query_token, "lead": address}).status_code == 200
        assert httpx.get(f"{url}/v1/queues", headers=bearer(admin_token)).status_code == 200
        assert httpx.get(f"{url}/v1/jobs/{admin_token}").status_code == 401
    finally:
        ingress.send_signal(signal.SIGTERM)
        ingress.wait(30)
    logged = out.read_text()
    assert "GET /healthz?token=***&lead=" in logged and masked(address) in logged, logged
    assert "GET /v1/jobs/<redacted>" in logged, logged
    for raw in (admin_token, query_token, address, httpx.URL(url, params={"a": address}).query.decode()[2:]):
        assert raw not in logged, f"{raw!r} is in the ingress log"


def _answers(url: str) -> bool:
    try:
        return httpx.get(url, timeout=2).status_code == 200
    except httpx.HTTPError:
        return False
