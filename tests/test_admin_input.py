"""Admin input is checked before anything is written: plans are bounded, a tenant names a template that
exists, agent overrides are text a database can store; and a plan stored before the bounds existed neither
stops the fleet from starting nor overflows what admission compares."""

from __future__ import annotations

import uuid
from typing import Any

import pytest

from schemas.tenants import MAX_MONTHLY_BUDGET_USD, MAX_PLAN_TOKENS, MAX_REQUESTS_PER_MINUTE, Plan

ADMIN = {"Authorization": "Bearer test-admin-token", "content-type": "application/json"}
CHAT = {"message": "Is the blue Tiguan still available?", "conversation_id": "c1", "lead_id": "l1"}

BEYOND = [
    ('{"monthly_budget_usd": 1e308}', "monthly_budget_usd"),
    ('{"monthly_budget_usd": 1000000001}', "monthly_budget_usd"),
    ('{"monthly_budget_usd": Infinity}', "monthly_budget_usd"),
    ('{"monthly_budget_usd": NaN}', "monthly_budget_usd"),
    ('{"monthly_budget_usd": -0.5}', "monthly_budget_usd"),
    (f'{{"monthly_token_budget": {2**63}}}', "monthly_token_budget"),
    (f'{{"monthly_token_budget": {2**64 + 5}}}', "monthly_token_budget"),
    (f'{{"monthly_token_budget": {MAX_PLAN_TOKENS + 1}}}', "monthly_token_budget"),
    (f'{{"requests_per_minute": {2**63}}}', "requests_per_minute"),
    (f'{{"tokens_per_minute": {2**63}}}', "tokens_per_minute"),
    (f'{{"weight": {2**70}}}', "weight"),
    (f'{{"max_in_flight": {-(2**70)}}}', "max_in_flight"),
]


def mirrored(tenant_id: str) -> dict[str, str]:
    """The plan as admission reads it, in Redis."""
    from tenancy.queues import get_queues

    queues = get_queues()
    return dict(queues.r.hgetall(f"{queues.p}:tenant:{tenant_id}"))


@pytest.mark.parametrize(("body", "field"), BEYOND, ids=[b for b, _ in BEYOND])
def test_a_plan_beyond_its_bounds_is_refused_with_its_field_and_nothing_changes(
    api: Any, make_tenant: Any, body: str, field: str
) -> None:
    tenant_id, _ = make_tenant("plan")
    before = api.get(f"/v1/tenants/{tenant_id}", headers=ADMIN).json()
    redis_before = mirrored(tenant_id)
    answer = api.put(f"/v1/tenants/{tenant_id}/plan", content=body, headers=ADMIN)
    assert answer.status_code == 422, answer.text
    error = answer.json()["error"]
    assert error["code"] == "invalid_request"
    assert field in [f["loc"][-1] for f in error["fields"]], error
    assert api.get(f"/v1/tenants/{tenant_id}", headers=ADMIN).json() == before
    assert mirrored(tenant_id) == redis_before


def test_a_plan_at_its_bounds_is_kept_and_mirrored_exactly(api: Any, make_tenant: Any) -> None:
    tenant_id, key = make_tenant("plan")
    plan = {"monthly_budget_usd": MAX_MONTHLY_BUDGET_USD, "monthly_token_budget": MAX_PLAN_TOKENS,
            "requests_per_minute": MAX_REQUESTS_PER_MINUTE, "tokens_per_minute": MAX_PLAN_TOKENS}
    answer = api.put(f"/v1/tenants/{tenant_id}/plan", json=plan, headers=ADMIN)
    assert answer.status_code == 200, answer.text
    stored = mirrored(tenant_id)
    assert stored["budget_usd"] == str(MAX_MONTHLY_BUDGET_USD * 10**6)
    assert stored["budget_tokens"] == str(MAX_PLAN_TOKENS)
    assert (stored["rpm"], stored["tpm"]) == (str(MAX_REQUESTS_PER_MINUTE), str(MAX_PLAN_TOKENS))
    job = api.post("/v1/jobs", json={"kind": "chat_draft", "payload": CHAT}, headers={"Authorization": f"Bearer {key}"})
    assert job.status_code == 202, job.text


@pytest.mark.parametrize(("body", "field"), BEYOND[:1] + BEYOND[5:6], ids=["1e308-dollars", "2**63-tokens"])
def test_a_tenant_with_a_plan_beyond_its_bounds_is_refused_and_nothing_is_created(
    api: Any, body: str, field: str
) -> None:
    from tenancy.mongo import master_db

    tenant_id = f"plan-{uuid.uuid4().hex[:10]}"
    raw = f'{{"tenant_id": "{tenant_id}", "plan": {body}}}'
    answer = api.post("/v1/tenants", content=raw, headers=ADMIN)
    assert answer.status_code == 422, answer.text
    assert answer.json()["error"]["fields"][0]["loc"][-1] == field
    assert_not_created(api, tenant_id)
    assert master_db().tenants.count_documents({"_id": tenant_id}) == 0


def assert_not_created(api: Any, tenant_id: str) -> None:
    from tenancy.mongo import master_db
    from tenancy.queues import get_queues

    assert api.get(f"/v1/tenants/{tenant_id}", headers=ADMIN).status_code == 404
    assert master_db().api_keys.count_documents({"tenant_id": tenant_id}) == 0
    assert not get_queues().has_tenant(tenant_id)
    assert tenant_id not in get_queues().tenants()


def test_an_unknown_template_is_refused_with_the_templates_that_exist_and_nothing_is_created(api: Any) -> None:
    tenant_id = f"tpl-{uuid.uuid4().hex[:10]}"
    answer = api.post("/v1/tenants", json={"tenant_id": tenant_id, "template_id": "no-such-template"},
                      headers=ADMIN)
    assert answer.status_code == 422, answer.text
    error = answer.json()["error"]
    assert error["code"] == "unknown_template"
    assert error["template_id"] == "no-such-template"
    assert {"default", "car-dealer"} <= set(error["templates"])
    assert "'no-such-template' does not exist" in error["message"]
    assert all(name in error["message"] for name in error["templates"])
    assert_not_created(api, tenant_id)


AGENTS = [
    ('{"prompts": {"chat\\u0000draft": "chat_draft"}}', "prompts"),
    ('{"prompts": {"$where": "chat_draft"}}', "prompts"),
    ('{"prompts": {"a.b": "chat_draft"}}', "prompts"),
    ('{"dos": ["\\udfff"]}', "dos"),
    ('{"model": "\\ud800"}', "model"),
    ('{"fallbacks": ["' + "m" * 201 + '"]}', "fallbacks"),
    ('{"donts": [' + ", ".join(['"x"'] * 101) + "]}", "donts"),
]


@pytest.mark.parametrize(("agent", "field"), AGENTS, ids=["nul-key", "dollar-key", "dotted-key", "lone-surrogate",
                                                          "surrogate-model", "long-name", "101-donts"])
def test_agent_overrides_no_database_can_store_are_refused_and_nothing_is_created(
    api: Any, agent: str, field: str
) -> None:
    tenant_id = f"agt-{uuid.uuid4().hex[:10]}"
    answer = api.post("/v1/tenants", content=f'{{"tenant_id": "{tenant_id}", "agent": {agent}}}', headers=ADMIN)
    assert answer.status_code == 422, answer.text
    fields = answer.json()["error"]["fields"]
    assert any(f["loc"][:3] == ["body", "agent", field] for f in fields), fields
    assert_not_created(api, tenant_id)


def test_the_fleet_starts_and_serves_a_tenant_whose_stored_plan_is_beyond_the_bounds(
    api: Any, fleet: Any, services: dict[str, str]
) -> None:
    """As an older version stored it: 1e308 dollars, 2**63 - 1 tokens a month and a minute. (Infinity too,
    on a MongoDB that stores it; nx-27017 refuses it, so here it is the stored plan's clamping alone.)"""
    from datetime import UTC, datetime

    from tenancy.apikeys import issue_key
    from tenancy.mongo import master_db
    from tenancy.queues import get_queues
    from tenantq.up import _prepare_master_data

    tenant_id = f"old-{uuid.uuid4().hex[:10]}"
    master_db().tenants.insert_one({
        "_id": tenant_id, "name": None, "template_id": "car-dealer", "agent": {}, "currency": "EUR",
        "status": "active", "created_at": datetime.now(UTC),
        "plan": {"weight": 2, "max_in_flight": 0, "monthly_budget_usd": 1e308, "monthly_token_budget": 2**63 - 1,
                 "requests_per_minute": None, "tokens_per_minute": 2**63 - 1},
    })
    get_queues().r.delete(f"{get_queues().p}:tenant:{tenant_id}")

    _prepare_master_data(fleet)  # what `tenantq up` does first, on the data it finds

    stored = mirrored(tenant_id)
    assert stored["budget_usd"] == str(MAX_MONTHLY_BUDGET_USD * 10**6)
    assert stored["budget_tokens"] == str(MAX_PLAN_TOKENS)
    assert stored["tpm"] == str(MAX_PLAN_TOKENS)
    assert (stored["weight"], stored["rpm"]) == ("2", "-1")
    shown = api.get(f"/v1/tenants/{tenant_id}", headers=ADMIN)
    assert shown.status_code == 200, shown.text
    assert shown.json()["plan"]["monthly_budget_usd"] == MAX_MONTHLY_BUDGET_USD
    assert any(t["tenant_id"] == tenant_id for t in api.get("/v1/tenants", headers=ADMIN).json())
    key = issue_key(tenant_id)
    job = api.post("/v1/jobs", json={"kind": "chat_draft", "payload": CHAT}, headers={"Authorization": f"Bearer {key}"})
    assert job.status_code == 202, job.text
    fixed = api.put(f"/v1/tenants/{tenant_id}/plan", json={"monthly_budget_usd": 50}, headers=ADMIN)
    assert fixed.status_code == 200, fixed.text
    assert master_db().tenants.find_one({"_id": tenant_id})["plan"]["monthly_budget_usd"] == 50  # type: ignore[index]
    assert mirrored(tenant_id)["budget_usd"] == str(50 * 10**6)
    plan, changed = Plan.clamped({"monthly_budget_usd": float("inf"), "tokens_per_minute": float("nan")})
    assert (plan.monthly_budget_usd, plan.tokens_per_minute) == (MAX_MONTHLY_BUDGET_USD, None)
    assert changed == ["monthly_budget_usd", "tokens_per_minute"]
