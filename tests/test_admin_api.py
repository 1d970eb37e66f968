"""Operator endpoints: tenants, plans, keys and the queue report, behind the admin token."""

from __future__ import annotations

import uuid
from typing import Any

ADMIN = {"Authorization": "Bearer test-admin-token"}
CHAT = {"message": "Is the blue Tiguan still available?", "conversation_id": "c1", "lead_id": "l1"}


def new_id() -> str:
    return f"adm-{uuid.uuid4().hex[:10]}"


def test_an_operator_creates_a_tenant_whose_key_submits_jobs(api: Any) -> None:
    tenant_id = new_id()
    created = api.post("/v1/tenants", json={"tenant_id": tenant_id, "template_id": "car-dealer"}, headers=ADMIN)
    assert created.status_code == 201, created.text
    key = created.json()["api_key"]
    answer = api.post("/v1/jobs", json={"kind": "chat_draft", "payload": CHAT},
                      headers={"Authorization": f"Bearer {key}"})
    assert answer.status_code == 202
    assert api.get(f"/v1/tenants/{tenant_id}", headers=ADMIN).json()["template_id"] == "car-dealer"


def test_admin_endpoints_refuse_a_tenant_key_and_a_missing_token(api: Any, make_tenant: Any) -> None:
    _, key = make_tenant()
    assert api.get("/v1/queues", headers={"Authorization": f"Bearer {key}"}).status_code == 401
    assert api.post("/v1/tenants", json={"tenant_id": new_id()}).status_code == 401


def test_an_invalid_tenant_id_is_refused_with_the_field_and_nothing_is_created(api: Any) -> None:
    answer = api.post("/v1/tenants", json={"tenant_id": "Bad_ID"}, headers=ADMIN)
    assert answer.status_code == 422
    assert answer.json()["error"]["fields"][0]["loc"][-1] == "tenant_id"
    assert api.get("/v1/tenants/Bad_ID", headers=ADMIN).status_code == 422


def test_a_plan_out_of_range_is_refused_and_the_plan_stays_as_it_was(api: Any, make_tenant: Any) -> None:
    tenant_id, _ = make_tenant()
    for plan in ({"weight": 0}, {"weight": 101}, {"max_in_flight": -1}, {"requests_per_minute": 0}):
        answer = api.put(f"/v1/tenants/{tenant_id}/plan", json=plan, headers=ADMIN)
        assert answer.status_code == 422, plan
        assert answer.json()["error"]["code"] == "invalid_request"
    assert api.get(f"/v1/tenants/{tenant_id}", headers=ADMIN).json()["plan"]["weight"] == 1
    changed = api.put(f"/v1/tenants/{tenant_id}/plan", json={"weight": 3, "max_in_flight": 5}, headers=ADMIN)
    assert changed.status_code == 200
    assert changed.json()["plan"]["weight"] == 3


def test_a_suspended_tenant_is_refused_until_it_is_resumed(api: Any, make_tenant: Any) -> None:
    tenant_id, key = make_tenant()
    auth = {"Authorization": f"Bearer {key}"}
    assert api.post(f"/v1/tenants/{tenant_id}/suspend", headers=ADMIN).json()["status"] == "suspended"
    refused = api.post("/v1/jobs", json={"kind": "chat_draft", "payload": CHAT}, headers=auth)
    assert refused.status_code == 403
    assert refused.json()["error"]["code"] == "tenant_suspended"
    assert api.post(f"/v1/tenants/{tenant_id}/resume", headers=ADMIN).json()["status"] == "active"
    assert api.post("/v1/jobs", json={"kind": "chat_draft", "payload": CHAT}, headers=auth).status_code == 202


def test_an_operator_issues_another_key_for_a_tenant(api: Any, make_tenant: Any) -> None:
    tenant_id, _ = make_tenant()
    key = api.post(f"/v1/tenants/{tenant_id}/keys", headers=ADMIN).json()["api_key"]
    assert api.get("/v1/jobs/unknown", headers={"Authorization": f"Bearer {key}"}).status_code == 404
    assert api.post("/v1/tenants/no-such-tenant/keys", headers=ADMIN).status_code == 404


def test_the_queue_report_shows_a_held_back_tenants_backlog_and_its_age(api: Any, make_tenant: Any) -> None:
    tenant_id, key = make_tenant()
    api.put(f"/v1/tenants/{tenant_id}/plan", json={"requests_per_minute": 1}, headers=ADMIN)
    for _ in range(3):  # one per minute may start: at least two wait, whatever the clock does meanwhile
        api.post("/v1/jobs", json={"kind": "chat_draft", "payload": CHAT}, headers={"Authorization": f"Bearer {key}"})
    report = api.get("/v1/queues", headers=ADMIN).json()
    assert report["backlog"]["interactive"] >= 1
    row = next(t for t in report["tenants"] if t["tenant_id"] == tenant_id)
    assert row["backlog"]["interactive"] >= 1
    assert row["oldest_age_s"] is not None and row["oldest_age_s"] >= 0


def test_metrics_export_the_backlog_of_each_class(api: Any) -> None:
    text = api.get("/metrics").text
    for name in ("interactive", "standard", "batch"):
        assert f'tenantq_backlog{{class="{name}"}}' in text
