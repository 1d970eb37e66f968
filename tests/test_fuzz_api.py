"""No route answers 5xx, whatever it is sent.

A property-based fuzzer (schemathesis, over the app's own OpenAPI document) sends every operation requests
that fit the schema and requests that do not, with valid credentials and with made-up ones, to the ingress
in process over real Redis and MongoDB. It runs on a key prefix and databases of its own, so the tenants it
creates and the plans it sets touch no other test. Each operation gets a fixed number of examples, drawn
the same way on every run (`derandomize`), so the suite stays quick and a failure repeats; set
TENANTQ_FUZZ_EXAMPLES and TENANTQ_FUZZ_SEED to fuzz longer or elsewhere.
"""

from __future__ import annotations

import itertools
import os
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import pytest
import schemathesis
from hypothesis import HealthCheck, Phase, given, seed, settings
from hypothesis import strategies as st
from hypothesis.errors import Unsatisfiable
from schemathesis import GenerationMode

ADMIN_TOKEN = "test-admin-token"


@dataclass
class Address:
    """The client address of the next request: made-up credentials come from a fresh address each time,
    so that the throttle lets them reach the credential checks."""

    current: str = "fuzz-valid"
    fresh: Iterator[int] = field(default_factory=itertools.count)

    def new(self) -> None:
        self.current = f"fuzz-{next(self.fresh)}"


@dataclass
class Target:
    schema: Any
    address: Address
    tenant_id: str
    api_key: str
    job_id: str


@pytest.fixture(scope="module")
def target(services: dict[str, str]) -> Iterator[Target]:
    from core.settings import get_settings
    from ingress.app import create_app
    from schemas.tenants import TenantCreate
    from tenancy.mongo import client
    from tenancy.queues import get_queues, reset_queues
    from tenancy.registry import clear_agent_cache, create_tenant
    from tenancy.seed import ensure_defaults

    own = f"fz{uuid.uuid4().hex[:8]}"
    with pytest.MonkeyPatch.context() as env:
        env.setenv("REDIS_KEY_PREFIX", own)
        env.setenv("MASTER_DATABASE_NAME", f"{own}-master")
        env.setenv("TENANT_DATABASE_PREFIX", f"{own}-t-")
        get_settings.cache_clear()
        reset_queues()
        clear_agent_cache()
        try:
            ensure_defaults()
            tenant, key = create_tenant(TenantCreate(tenant_id=f"{own}-tenant"))
            app = create_app()
            address = Address()

            async def from_caller(scope: Any, receive: Any, send: Any) -> None:
                if scope["type"] == "http":
                    scope = {**scope, "client": (address.current, 50000)}
                await app(scope, receive, send)

            schema = schemathesis.openapi.from_asgi("/openapi.json", from_caller)
            job = schemathesis_job(schema, key)
            yield Target(schema, address, tenant.tenant_id, key, job)
        finally:
            queues = get_queues()
            for name in queues.r.scan_iter(f"{own}:*", count=1000):
                queues.r.delete(name)
            for name in client().list_database_names():
                if name.startswith(own):
                    client().drop_database(name)
    get_settings.cache_clear()
    reset_queues()
    clear_agent_cache()


def schemathesis_job(schema: Any, key: str) -> str:
    """A job of the fuzz tenant, so that GET /v1/jobs/{job_id} also reads one that exists."""
    from fastapi.testclient import TestClient

    chat = {"message": "Is the blue Tiguan still available?", "conversation_id": "c1", "lead_id": "l1"}
    with TestClient(schema.app, client=("fuzz-setup", 50000)) as api:
        answer = api.post("/v1/jobs", json={"kind": "chat_draft", "payload": chat},
                          headers={"Authorization": f"Bearer {key}"})
    assert answer.status_code == 202, answer.text
    return str(answer.json()["job_id"])


# Made-up credentials: nothing, a wrong scheme, a wrong key or token, bytes that are no text at all.
_made_up = st.one_of(
    st.none(),
    st.sampled_from(["Basic dXNlcjpwYXNz", "Bearer", "Bearer ", "bearer tq_", "Bearer test-admin-tokeN"]),
    st.binary(max_size=48).map(lambda b: "Bearer " + b.translate(None, b"\r\n\x00").decode("latin-1")),
    st.text(max_size=48).map(lambda t: "Bearer tq_" + t.translate({13: None, 10: None, 0: None})
                                      .encode("utf-8").decode("latin-1")),
)


def _credentials(target: Target, path: str) -> str:
    from ingress.auth import Caller as RouteCaller
    from ingress.guard import caller_of

    return {RouteCaller.tenant: f"Bearer {target.api_key}", RouteCaller.project: f"Bearer {target.api_key}",
            RouteCaller.admin: f"Bearer {ADMIN_TOKEN}", RouteCaller.anyone: ""}[caller_of(path)]


def _fuzz(target: Target, operation: Any, mode: GenerationMode, valid: bool, examples: int,
          found: list[str], **overrides: Any) -> None:
    strategy = operation.as_strategy(generation_mode=mode, **overrides)

    chosen = os.environ.get("TENANTQ_FUZZ_SEED")

    @settings(max_examples=examples, deadline=None, database=None, derandomize=chosen is None,
              phases=[Phase.explicit, Phase.generate], suppress_health_check=list(HealthCheck))
    @given(case=strategy, made_up=_made_up)
    def run(case: Any, made_up: str | None) -> None:
        headers = {k: v for k, v in (case.headers or {}).items() if k.lower() != "authorization"}
        if valid:
            target.address.current = "fuzz-valid"
            credentials: str | None = _credentials(target, case.formatted_path)
        else:
            target.address.new()
            credentials = made_up
        if credentials:
            headers["Authorization"] = credentials
        case.headers = headers
        try:
            response = case.call()
        except Exception as exc:  # noqa: BLE001  the server answered 500 and re-raised: that is a finding
            found.append(f"500 {case.method} {case.formatted_path} ({mode.value}, "
                         f"{'valid' if valid else 'made-up'} credentials): {type(exc).__name__}: {exc}\n"
                         f"  {case.as_curl_command()}")
            return
        if response.status_code >= 500:
            found.append(f"{response.status_code} {case.method} {case.formatted_path} ({mode.value}, "
                         f"{'valid' if valid else 'made-up'} credentials): {response.text[:300]}\n"
                         f"  {case.as_curl_command()}")

    if chosen is not None:
        run = seed(int(chosen))(run)
    try:
        run()
    except Unsatisfiable:  # the operation takes anything: there is no invalid request to make of it
        assert mode is GenerationMode.NEGATIVE


def test_no_route_answers_5xx_to_generated_requests_with_or_without_valid_credentials(target: Target) -> None:
    examples = int(os.environ.get("TENANTQ_FUZZ_EXAMPLES", "20"))
    found: list[str] = []
    operations = [result.ok() for result in target.schema.get_all_operations()]
    # Jobs first: the admin routes may suspend the fuzz tenant or spend its budget, after which its jobs are
    # refused before they are read.
    operations.sort(key=lambda op: (not op.path.startswith("/v1/jobs"), op.path, op.method))
    assert {"/v1/jobs", "/v1/jobs/{job_id}", "/v1/tenants", "/v1/tenants/{tenant_id}/plan"} <= {
        op.path for op in operations}
    for operation in operations:
        known = {name: value for name, value in (("tenant_id", target.tenant_id), ("job_id", target.job_id))
                 if f"{{{name}}}" in operation.path}
        for mode, valid in itertools.product(GenerationMode, (True, False)):
            _fuzz(target, operation, mode, valid, examples, found)
            if known and mode is GenerationMode.POSITIVE:
                _fuzz(target, operation, mode, valid, examples, found, path_parameters=known)
    assert not found, f"{len(found)} requests answered 5xx:\n" + "\n".join(found[:20])
