"""The Python client, over HTTP against a real uvicorn ingress and directly against Redis and Mongo:
the same calls, the same results, the same errors."""

from __future__ import annotations

import sys
import time
import uuid
from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import httpx
import pytest

from core import errors
from schemas.agents import AgentSettings, ModelConfig
from tenantq.client import Client, JobTimeout
from tenantq.localfleet import LocalFleet, Process

EMAIL = {
    "from": "max.mustermann@example.org", "to": "sales@dealer.example", "subject": "Financing",
    "body": "Do you offer financing over 48 months?", "message_id": "<c1@example.org>", "lead_id": "lead-c",
}


@pytest.fixture(scope="module")
def ingress(fleet: LocalFleet) -> Iterator[tuple[str, Process]]:
    """A real uvicorn serving the ingress on a free port, for as long as this module's tests run."""
    from tenantq.services import free_port

    port = free_port()
    process = fleet.start(f"ingress-{port}", [sys.executable, "-m", "uvicorn", "ingress.app:app",
                                              "--host", "127.0.0.1", "--port", str(port)])
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            if httpx.get(f"{url}/healthz", timeout=1).status_code == 200:
                break
        except httpx.TransportError:
            if not process.alive():
                break
        time.sleep(0.1)
    else:
        process.stop()
        pytest.fail(f"the ingress did not start:\n{process.log_tail()}")
    if not process.alive():
        pytest.fail(f"the ingress exited:\n{process.log_tail()}")
    yield url, process
    process.stop()


@pytest.fixture
def tenant(make_tenant: Any, loopback: Any) -> tuple[str, str]:
    from tenancy.registry import register_model

    register_model(ModelConfig(name="loop-a", model="openai/gpt-4o-mini", api_base=loopback.api_base,
                               api_key_env="LOOPBACK_API_KEY"))
    created: tuple[str, str] = make_tenant("client", template_id="car-dealer", agent=AgentSettings(model="loop-a"))
    return created


@pytest.fixture(params=["http", "direct"])
def client(request: pytest.FixtureRequest, tenant: tuple[str, str]) -> Iterator[Client]:
    tenant_id, key = tenant
    if request.param == "http":
        url, _ = request.getfixturevalue("ingress")
        made = Client(url=url, api_key=key)
    else:
        made = Client(tenant_id=tenant_id)
    with made:
        yield made


def test_the_client_enqueues_gets_and_waits_for_a_job(client: Client, worker: Any, tenant: tuple[str, str]) -> None:
    job_id = client.enqueue("email_reply", EMAIL, idempotency_key=f"mail-{uuid.uuid4().hex}")
    assert client.get(job_id).job_id == job_id
    job = client.wait(job_id, timeout=30, poll_s=0.05)
    assert job.status == "succeeded", job.error
    assert job.tenant_id == tenant[0]
    assert job.result is not None and job.result["subject"] == "Re: Financing"
    assert job.usage is not None and job.usage.total_tokens > 0
    assert job.started_at is not None and job.finished_at is not None
    assert job.enqueued_at <= job.started_at <= job.finished_at, "times are comparable, all in UTC"
    assert job.finished_at.utcoffset() == timedelta(0)
    assert client.get(job_id) == job


def test_the_client_returns_the_first_job_for_a_repeated_idempotency_key(client: Client) -> None:
    key = f"mail-{uuid.uuid4().hex}"
    assert client.enqueue("email_reply", EMAIL, idempotency_key=key) == client.enqueue(
        "email_reply", EMAIL, idempotency_key=key)


def test_the_client_raises_invalid_job_with_field_errors_and_enqueues_nothing(
    client: Client, tenant: tuple[str, str]
) -> None:
    from tenancy.mongo import tenant_db

    with pytest.raises(errors.InvalidJob) as refused:
        client.enqueue("email_reply", {**EMAIL, "from": "nobody"})
    assert refused.value.context["fields"][0]["loc"][-1] == "from"
    with pytest.raises(errors.InvalidJob):
        client.enqueue("summon_demons", {})
    assert tenant_db(tenant[0]).executions.count_documents({}) == 0


def test_the_client_raises_job_not_found_for_an_unknown_job(client: Client) -> None:
    with pytest.raises(errors.JobNotFound, match="No job"):
        client.get(uuid.uuid4().hex)


def test_waiting_past_the_timeout_raises_job_timeout(client: Client, tenant: tuple[str, str]) -> None:
    from schemas.jobs import JobEnvelope, JobKind, PriorityClass
    from tenancy import jobs

    never_queued = JobEnvelope(job_id=uuid.uuid4().hex, tenant_id=tenant[0], kind=JobKind.email_reply,
                               priority=PriorityClass.standard, payload=EMAIL, enqueued_at=jobs.now())
    jobs.create(never_queued, None)
    started = time.monotonic()
    with pytest.raises(JobTimeout, match="still queued after 0 s; poll again later"):
        client.wait(never_queued.job_id, timeout=0.3, poll_s=0.05)
    assert time.monotonic() - started < 5


def test_the_http_client_with_an_unknown_key_raises_authentication_error(
    ingress: tuple[str, Process],
) -> None:
    with Client(url=ingress[0], api_key="tq_never-issued") as client, pytest.raises(
        errors.AuthenticationError, match="tenants create"
    ):
        client.enqueue("email_reply", EMAIL)


def test_the_direct_client_refuses_an_invalid_tenant_id(services: dict[str, str]) -> None:
    with Client(tenant_id="Bad_ID") as client, pytest.raises(errors.InvalidTenantId):
        client.enqueue("email_reply", EMAIL)


@pytest.mark.parametrize("kwargs", [{}, {"url": "http://x", "tenant_id": "t1"}, {"url": "http://x"}])
def test_a_client_needs_exactly_one_mode(kwargs: dict[str, Any]) -> None:
    with pytest.raises(errors.ConfigurationError):
        Client(**kwargs)

