"""The guard in front of every route: credentials before the body, bodies bounded while they stream in,
and failed authentication throttled per client address.

Uploads go over real HTTP connections to a real uvicorn serving the ingress, whose memory is read from
/proc while they stream; the other tests call the ingress in process, each from client addresses of its own.
"""

from __future__ import annotations

import select
import socket
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.conftest import wait_for

ADMIN_TOKEN = "test-admin-token"
CHAT = {"message": "Is the blue Tiguan still available?", "conversation_id": "c1", "lead_id": "l1"}
MiB = 1024 * 1024


def bearer(token: str | bytes) -> dict[str, Any]:
    return {"Authorization": b"Bearer " + token if isinstance(token, bytes) else f"Bearer {token}"}


def client_from(address: str) -> Any:
    from fastapi.testclient import TestClient

    from ingress.app import create_app

    return TestClient(create_app(), client=(address, 50000))


def new_address() -> str:
    """A client address no other test uses (TEST-NET-2: documentation only; no packet is ever sent)."""
    return f"198.51.100.{uuid.uuid4().int % 254 + 1}-{uuid.uuid4().hex[:6]}"


# --- which routes need which credentials ----------------------------------------------------------------


def test_every_route_is_guarded_as_the_credentials_it_declares(services: dict[str, str]) -> None:
    """The guard tells tenants' routes from operators' by path; each route declares its credentials through
    its dependencies, which the OpenAPI document shows. The two must agree for every route."""
    from ingress.app import create_app
    from ingress.auth import Caller
    from ingress.guard import caller_of

    document = create_app().openapi()
    declared = {"ApiKey": Caller.tenant, "AdminToken": Caller.admin, "ProjectKey": Caller.project}
    seen = set()
    for path, operations in document["paths"].items():
        for method, operation in operations.items():
            schemes = {name for requirement in operation.get("security", []) for name in requirement}
            expected = {declared[name] for name in schemes} or {Caller.anyone}
            assert expected == {caller_of(path)}, (method, path, schemes)
            seen.add(caller_of(path))
    assert seen == set(Caller)


# --- credentials ------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("token", ["Bearer tökën".encode(), "Bearer tökën".encode("latin-1"), b"Bearer \xff\xfe",
                                   f"Bearer {ADMIN_TOKEN}é".encode()],
                         ids=["utf-8", "latin-1", "not-text", "admin-token-and-more"])
def test_a_non_ascii_bearer_token_is_refused_with_401(services: dict[str, str], make_tenant: Any, token: bytes) -> None:
    tenant_id, _ = make_tenant("guard")
    with client_from(new_address()) as api:
        for method, path in (("GET", "/v1/queues"), ("GET", f"/v1/tenants/{tenant_id}"),
                             ("PUT", f"/v1/tenants/{tenant_id}/plan"), ("POST", "/v1/jobs"),
                             ("GET", f"/v1/jobs/{uuid.uuid4().hex}")):
            answer = api.request(method, path, headers={"Authorization": token}, json={})
            assert answer.status_code == 401, (method, path, answer.text)
            assert answer.json()["error"]["code"] == "unauthenticated"
            assert answer.headers["www-authenticate"] == "Bearer"


def test_what_the_framework_refuses_itself_answers_in_the_one_error_shape(api: Any, make_tenant: Any) -> None:
    tenant_id, _ = make_tenant("guard")
    admin = {**bearer(ADMIN_TOKEN), "content-type": "application/json"}
    for method, path, body, status, code in [
        ("GET", "/no/such/route", None, 404, "not_found"),
        ("DELETE", "/v1/queues", None, 405, "method_not_allowed"),
        ("PUT", f"/v1/tenants/{tenant_id}/plan", b"\xff\xfe{", 400, "invalid_request"),
    ]:
        answer = api.request(method, path, content=body, headers=admin)
        assert answer.status_code == status, answer.text
        assert answer.json()["error"]["code"] == code
        assert answer.json()["error"]["message"]


# --- throttling failed authentication -----------------------------------------------------------------------


def test_an_address_that_keeps_failing_is_throttled_even_with_a_valid_key_and_nothing_is_enqueued(
    services: dict[str, str], make_tenant: Any
) -> None:
    from core.settings import get_settings
    from tenancy.mongo import tenant_db

    tenant_id, key = make_tenant("guard")
    limit = get_settings().fleet.auth_failure_limit
    with client_from(new_address()) as guesser, client_from(new_address()) as bystander:
        for i in range(limit):
            wrong = f"tq_{uuid.uuid4().hex}" if i % 2 else "wrong-admin-token"
            path = "/v1/jobs" if i % 2 else "/v1/tenants"
            assert guesser.post(path, json={}, headers=bearer(wrong)).status_code == 401
        for path, token in (("/v1/jobs", key), ("/v1/tenants", ADMIN_TOKEN), ("/v1/jobs", "tq_wrong")):
            refused = guesser.post(path, json={"kind": "chat_draft", "payload": CHAT}, headers=bearer(token))
            assert refused.status_code == 429, refused.text
            assert refused.json()["error"]["code"] == "authentication_throttled"
            assert 1 <= int(refused.headers["retry-after"]) <= get_settings().fleet.auth_failure_window_s
            assert "retry in" in refused.json()["error"]["message"]
        assert tenant_db(tenant_id).executions.count_documents({}) == 0
        served = bystander.post("/v1/jobs", json={"kind": "chat_draft", "payload": CHAT}, headers=bearer(key))
        assert served.status_code == 202, served.text


def test_successful_authentication_is_neither_counted_nor_slowed(services: dict[str, str], make_tenant: Any) -> None:
    from core.settings import get_settings

    _, key = make_tenant("guard")
    limit = get_settings().fleet.auth_failure_limit
    with client_from(new_address()) as api:
        for _ in range(limit * 2):
            assert api.get(f"/v1/jobs/{uuid.uuid4().hex}", headers=bearer(key)).status_code == 404
            assert api.get("/v1/queues", headers=bearer(ADMIN_TOKEN)).status_code == 200
        for _ in range(limit):
            assert api.get("/v1/queues", headers=bearer("wrong")).status_code == 401
        assert api.get("/v1/queues", headers=bearer("wrong")).status_code == 429


def test_the_throttle_lifts_when_the_window_ends(
    services: dict[str, str], make_tenant: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    from core.settings import get_settings

    _, key = make_tenant("guard")
    monkeypatch.setenv("TENANTQ_AUTH_FAILURE_LIMIT", "3")
    monkeypatch.setenv("TENANTQ_AUTH_FAILURE_WINDOW_S", "1")
    get_settings.cache_clear()
    try:
        with client_from(new_address()) as api:
            for _ in range(3):
                assert api.get("/v1/jobs/x", headers=bearer("tq_wrong")).status_code == 401
            assert api.get("/v1/jobs/x", headers=bearer(key)).status_code == 429
            wait_for(lambda: api.get("/v1/jobs/x", headers=bearer(key)).status_code == 404, timeout=5, interval=0.2)
    finally:
        monkeypatch.undo()
        get_settings.cache_clear()


def test_ipv6_addresses_of_one_network_are_throttled_together(services: dict[str, str]) -> None:
    from core.settings import get_settings

    limit = get_settings().fleet.auth_failure_limit
    network = f"2001:db8:{uuid.uuid4().int % 65536:x}:{uuid.uuid4().int % 65536:x}"
    for i in range(limit):
        with client_from(f"{network}::{i + 1:x}") as api:
            assert api.get("/v1/queues", headers=bearer("wrong")).status_code == 401
    with client_from(f"{network}::ffff") as same_network, client_from(f"{network}1::1") as other:
        assert same_network.get("/v1/queues", headers=bearer(ADMIN_TOKEN)).status_code == 429
        assert other.get("/v1/queues", headers=bearer(ADMIN_TOKEN)).status_code == 200


# --- bodies, over real HTTP --------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def ingress(fleet: Any) -> Iterator[tuple[int, int]]:
    """A real uvicorn serving the ingress on a free port: (port, pid)."""
    from tenantq.services import free_port

    port = free_port()
    process = fleet.start(f"guard-ingress-{port}", [sys.executable, "-m", "uvicorn", "ingress.app:app",
                                                    "--host", "127.0.0.1", "--port", str(port)])
    try:
        wait_for(lambda: _answers(f"http://127.0.0.1:{port}/healthz") or not process.alive(), timeout=30)
        assert process.alive(), process.log_tail()
        yield port, process.process.pid
    finally:
        process.stop()


def _answers(url: str) -> bool:
    try:
        return httpx.get(url, timeout=1).status_code == 200
    except httpx.TransportError:
        return False


def rss(pid: int) -> int:
    """The process's resident memory in bytes."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024
    raise AssertionError("no VmRSS")


def upload(port: int, method: str, path: str, headers: dict[str, Any], total: int,
           declared: int | None = None, timeout: float = 60) -> tuple[int, dict[str, Any], int]:
    """Streams a chunked body of `total` bytes (or, given `declared`, a body under that Content-Length),
    stopping as soon as the server answers: (status, JSON body, bytes sent)."""
    sock = socket.create_connection(("127.0.0.1", port), timeout=timeout)
    framing = f"Content-Length: {declared}" if declared is not None else "Transfer-Encoding: chunked"
    head = "".join(f"{k}: {v.decode('latin-1') if isinstance(v, bytes) else v}\r\n" for k, v in headers.items())
    sock.sendall(f"{method} {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
                 f"{framing}\r\n{head}\r\n".encode("latin-1"))
    chunk = b"x" * (64 * 1024)
    frame = chunk if declared is not None else f"{len(chunk):x}\r\n".encode() + chunk + b"\r\n"
    sent, pending, deadline = 0, b"", time.monotonic() + timeout
    sock.setblocking(False)
    try:
        while time.monotonic() < deadline:
            more = sent < total or bool(pending)
            readable, writable, _ = select.select([sock], [sock] if more else [], [], 1)
            if readable:
                break
            if not writable:
                continue
            if not pending:
                pending, sent = frame, sent + len(chunk)
                if sent >= total and declared is None:
                    pending += b"0\r\n\r\n"
            try:
                pending = pending[sock.send(pending):]
            except BlockingIOError:
                continue
            except (BrokenPipeError, ConnectionResetError):
                break
        sock.settimeout(timeout)
        return (*_response(sock), sent)
    finally:
        sock.close()


def _response(sock: socket.socket) -> tuple[int, dict[str, Any]]:
    import json

    data = b""
    while b"\r\n\r\n" not in data:
        piece = sock.recv(65536)
        assert piece, f"the server closed without answering: {data!r}"
        data += piece
    head, _, body = data.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    fields = {k.lower(): v.strip() for k, _, v in (line.partition(":") for line in lines[1:])}
    length = int(fields.get("content-length", "0"))
    while len(body) < length:
        piece = sock.recv(65536)
        if not piece:
            break
        body += piece
    return int(lines[0].split()[1]), json.loads(body[:length]) if length else {}


UPLOADS = [
    ("POST", "/v1/jobs", None, 401),
    ("POST", "/v1/tenants", None, 401),
    ("PUT", "/v1/tenants/{tenant}/plan", None, 401),
    ("POST", "/v1/jobs", "key", 413),
    ("POST", "/v1/tenants", "admin", 413),
    ("PUT", "/v1/tenants/{tenant}/plan", "admin", 413),
    ("POST", "/healthz", None, 413),
    ("POST", "/no/such/route", None, 413),
]


@pytest.mark.parametrize(("method", "path", "credentials", "status"), UPLOADS,
                         ids=[f"{m} {p} {c or 'unauthenticated'}" for m, p, c, _ in UPLOADS])
def test_a_64_mib_chunked_upload_is_refused_before_the_ingress_holds_it(
    ingress: tuple[int, int], make_tenant: Any, method: str, path: str, credentials: str | None, status: int
) -> None:
    """Unauthenticated: 401 before the body is read. Authenticated: 413 as soon as it passes the limit."""
    from tenancy.mongo import master_db, tenant_db

    port, pid = ingress
    tenant_id, key = make_tenant("upload")
    headers = {"key": bearer(key), "admin": bearer(ADMIN_TOKEN), None: {}}[credentials]
    assert httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=10).status_code == 200
    before = rss(pid)
    answer, body, sent = upload(port, method, path.format(tenant=tenant_id), headers, 64 * MiB)
    grown = rss(pid) - before
    assert answer == status, body
    assert body["error"]["code"] == {401: "unauthenticated", 413: "payload_too_large"}[status]
    assert grown < 16 * MiB, f"the ingress grew by {grown / MiB:.1f} MiB while refusing a 64 MiB upload"
    assert sent < 64 * MiB, "the upload was answered only after it was sent whole"
    assert tenant_db(tenant_id).executions.count_documents({}) == 0
    assert master_db().tenants.find_one({"_id": tenant_id})["plan"]["weight"] == 1  # type: ignore[index]


@pytest.mark.parametrize(("path", "credentials", "limit"), [("/v1/jobs", "key", 256 * 1024),
                                                            ("/v1/tenants", "admin", 256 * 1024)])
def test_a_declared_length_over_the_limit_is_refused_before_the_body_is_sent(
    ingress: tuple[int, int], make_tenant: Any, path: str, credentials: str, limit: int
) -> None:
    port, _ = ingress
    _, key = make_tenant("upload")
    headers = bearer(key) if credentials == "key" else bearer(ADMIN_TOKEN)
    answer, body, sent = upload(port, "POST", path, headers, 64 * MiB, declared=64 * MiB)
    assert (answer, body["error"]["code"], body["error"]["limit_bytes"]) == (413, "payload_too_large", limit)
    assert sent < 64 * MiB


def test_a_job_just_under_the_limit_is_taken_over_real_http(ingress: tuple[int, int], make_tenant: Any) -> None:
    import json

    port, _ = ingress
    tenant_id, key = make_tenant("upload")
    email = {"from": "lead@example.com", "to": "sales@dealer.example", "subject": "Price",
             "body": "€" * 85_000, "message_id": "<under@example.com>", "lead_id": "lead-9"}
    raw = json.dumps({"kind": "email_reply", "payload": email}, ensure_ascii=False).encode()
    assert 248 * 1024 < len(raw) < 256 * 1024
    answer = httpx.post(f"http://127.0.0.1:{port}/v1/jobs", content=raw, timeout=30,
                        headers={**bearer(key), "content-type": "application/json"})
    assert answer.status_code == 202, answer.text
    from tenancy.mongo import tenant_db

    assert tenant_db(tenant_id).executions.count_documents({}) == 1
