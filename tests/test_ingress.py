"""What the HTTP ingress refuses, and that a refusal never leaves a job behind in Mongo or Redis."""

from __future__ import annotations

import json
import uuid
from typing import Any

import pytest
from pydantic import ValidationError

from schemas.jobs import PriorityClass

EMAIL = {
    "from": "lead@example.com", "to": "sales@dealer.example", "subject": "Price",
    "body": "What does the estate version cost?", "message_id": "<ingress@example.com>", "lead_id": "lead-9",
}


def bearer(key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}


def queued_state(tenant_id: str) -> dict[str, Any]:
    """Everything that would show a job was accepted: its record, its tenant's queues, the class backlogs."""
    from tenancy.mongo import tenant_db
    from tenancy.queues import get_queues

    queues = get_queues()
    return {
        "executions": tenant_db(tenant_id).executions.count_documents({}),
        "tenant_queues": {c.value: queues.r.llen(f"{queues.p}:q:{tenant_id}:{c.value}") for c in PriorityClass},
        "backlog": {c.value: queues.r.get(f"{queues.p}:backlog:{c.value}") for c in PriorityClass},
    }


def assert_nothing_enqueued(tenant_id: str, before: dict[str, Any]) -> None:
    after = queued_state(tenant_id)
    assert after == before
    assert after["executions"] == 0
    assert set(after["tenant_queues"].values()) == {0}


@pytest.mark.parametrize(("body", "field"), [
    ({"kind": "email_reply", "payload": {**EMAIL, "from": "not-an-address"}}, "email_reply.payload.from"),
    ({"kind": "email_reply", "payload": {k: v for k, v in EMAIL.items() if k != "body"}},
     "email_reply.payload.body"),
    ({"kind": "chat_draft", "payload": {"message": "hi", "conversation_id": "c1"}}, "chat_draft.payload.lead_id"),
    ({"kind": "email_reply", "payload": EMAIL, "priority": "urgent"}, "email_reply.priority"),
    ({"kind": "noop", "payload": {}}, ""),
], ids=["bad-address", "missing-body", "missing-lead", "unknown-priority", "unsubmittable-kind"])
def test_an_invalid_job_is_refused_with_its_field_errors_and_nothing_is_enqueued(
    api: Any, make_tenant: Any, body: dict[str, Any], field: str
) -> None:
    tenant_id, key = make_tenant("ing")
    before = queued_state(tenant_id)
    answer = api.post("/v1/jobs", json=body, headers=bearer(key))
    assert answer.status_code == 422, answer.text
    error = answer.json()["error"]
    assert error["code"] == "invalid_job"
    assert "nothing was enqueued" in error["message"]
    assert field in [".".join(str(part) for part in f["loc"]) for f in error["fields"]], error["fields"]
    assert all(f["msg"] for f in error["fields"])
    assert_nothing_enqueued(tenant_id, before)


def test_a_body_that_is_not_json_is_refused_as_an_invalid_job(api: Any, make_tenant: Any) -> None:
    tenant_id, key = make_tenant("ing")
    before = queued_state(tenant_id)
    answer = api.post("/v1/jobs", content=b"{not json", headers={**bearer(key), "content-type": "application/json"})
    assert answer.status_code == 422
    assert answer.json()["error"]["fields"][0]["type"] == "json_invalid"
    assert_nothing_enqueued(tenant_id, before)


@pytest.mark.parametrize("headers", [
    {},
    {"Authorization": "Bearer tq_this-key-was-never-issued"},
    {"Authorization": "Bearer sk-not-even-a-tenantq-key"},
    {"Authorization": "Basic dXNlcjpwYXNz"},
], ids=["missing", "unknown", "malformed", "not-bearer"])
def test_a_missing_or_unknown_api_key_is_refused_with_401_and_nothing_is_enqueued(
    api: Any, make_tenant: Any, headers: dict[str, str]
) -> None:
    tenant_id, _ = make_tenant("ing")
    before = queued_state(tenant_id)
    answer = api.post("/v1/jobs", json={"kind": "email_reply", "payload": EMAIL}, headers=headers)
    assert answer.status_code == 401
    assert answer.headers["www-authenticate"] == "Bearer"
    error = answer.json()["error"]
    assert error["code"] == "unauthenticated"
    assert "Bearer tq_" in error["message"] or "tenants create" in error["message"]
    assert api.get(f"/v1/jobs/{uuid.uuid4().hex}", headers=headers).status_code == 401
    assert_nothing_enqueued(tenant_id, before)


def test_a_revoked_key_is_refused(api: Any, make_tenant: Any) -> None:
    from tenancy.apikeys import revoke_keys

    tenant_id, key = make_tenant("ing")
    assert revoke_keys(tenant_id) == 1
    answer = api.post("/v1/jobs", json={"kind": "email_reply", "payload": EMAIL}, headers=bearer(key))
    assert answer.status_code == 401
    assert queued_state(tenant_id)["executions"] == 0


def test_an_unknown_job_id_is_not_found(api: Any, make_tenant: Any) -> None:
    _, key = make_tenant("ing")
    job_id = uuid.uuid4().hex
    answer = api.get(f"/v1/jobs/{job_id}", headers=bearer(key))
    assert answer.status_code == 404
    assert answer.json()["error"]["code"] == "job_not_found"
    assert job_id in answer.json()["error"]["message"]


@pytest.mark.parametrize("declared", [True, False], ids=["content-length", "chunked"])
def test_a_body_over_256_kib_is_refused_with_413_and_nothing_is_enqueued(
    api: Any, make_tenant: Any, declared: bool
) -> None:
    tenant_id, key = make_tenant("ing")
    before = queued_state(tenant_id)
    body = {"kind": "email_reply", "payload": {**EMAIL, "body": "x" * (256 * 1024)}}
    raw = json.dumps(body).encode()
    content: Any = raw if declared else iter([raw[: len(raw) // 2], raw[len(raw) // 2:]])
    answer = api.post("/v1/jobs", content=content, headers={**bearer(key), "content-type": "application/json"})
    assert answer.status_code == 413
    error = answer.json()["error"]
    assert error["code"] == "payload_too_large"
    assert "256 KiB" in error["message"]
    assert_nothing_enqueued(tenant_id, before)


def test_a_body_just_under_the_limit_is_accepted(api: Any, make_tenant: Any) -> None:
    tenant_id, key = make_tenant("ing")
    body = {"kind": "email_reply", "payload": {**EMAIL, "body": "x" * 90_000}}
    answer = api.post("/v1/jobs", json=body, headers=bearer(key))
    assert answer.status_code == 202, answer.text
    assert queued_state(tenant_id)["executions"] == 1


def test_an_invalid_tenant_id_is_refused_at_creation_and_creates_nothing(services: dict[str, str]) -> None:
    from schemas.tenants import TenantCreate
    from tenancy.mongo import client, master_db
    from tenancy.queues import get_queues
    from tenancy.registry import create_tenant

    with pytest.raises(ValidationError) as refused:
        TenantCreate(tenant_id="Bad_ID")
    assert refused.value.errors()[0]["loc"] == ("tenant_id",)
    from core.errors import InvalidTenantId

    with pytest.raises(InvalidTenantId, match="a-z, 0-9"):
        create_tenant(TenantCreate.model_construct(tenant_id="Bad_ID", template_id="default"))
    assert master_db().tenants.count_documents({"_id": "Bad_ID"}) == 0
    assert master_db().api_keys.count_documents({"tenant_id": "Bad_ID"}) == 0
    assert not any("Bad_ID" in name for name in client().list_database_names())
    assert not get_queues().has_tenant("Bad_ID")


def test_jobs_for_an_invalid_or_unknown_tenant_id_are_refused_and_nothing_is_enqueued(
    services: dict[str, str],
) -> None:
    from pydantic import TypeAdapter

    from core.errors import InvalidTenantId, UnknownTenant
    from ingress.submit import submit
    from schemas.jobs import JobRequest
    from tenancy.mongo import client
    from tenancy.queues import get_queues

    request: Any = TypeAdapter(JobRequest).validate_python({"kind": "email_reply", "payload": EMAIL})
    queues = get_queues()
    backlog = {c: queues.backlog(c) for c in PriorityClass}
    with pytest.raises(InvalidTenantId):
        submit("Bad_ID", request)
    unknown = f"nobody-{uuid.uuid4().hex[:8]}"
    with pytest.raises(UnknownTenant):
        submit(unknown, request)
    assert {c: queues.backlog(c) for c in PriorityClass} == backlog
    names = client().list_database_names()
    assert not any("Bad_ID" in name or unknown in name for name in names)
    assert not queues.has_tenant(unknown)
