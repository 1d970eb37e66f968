"""The ERP routes over real HTTP (a uvicorn ingress) with a real worker and the bundled ERP server over real
stdio: status, async and quick analyses, refusals that write nothing, and isolation between projects."""

from __future__ import annotations

import sys
import uuid
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from schemas.agents import AgentSettings, ModelConfig
from schemas.tenants import Plan
from tenantq.localfleet import LocalFleet
from tests.conftest import wait_for
from tests.real_ingress import running_ingress

pytestmark = pytest.mark.timeout(180)
RECORDS, SEED = 2_000, 5
ADMIN = {"Authorization": "Bearer test-admin-token"}
QUICK = {"prompt": "Which supplier invoices do not match their purchase orders?", "categories": ["invoice_matching"]}
CHAT = {"message": "Is the estate still there?", "conversation_id": "dyn-1", "lead_id": "lead-dyn"}
http = httpx.Client(timeout=150)
"""Room for a quick analysis (the route waits up to 120 s) and the ingress's first imports."""


@pytest.fixture(scope="module")
def ingress(fleet: LocalFleet, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    with running_ingress(fleet.env, str(tmp_path_factory.mktemp("ingress") / "ingress.log")) as url:
        yield url
    http.close()


@pytest.fixture(scope="module")
def erp_server(services: dict[str, str]) -> str:
    from mcp_clients.registry import bundled_erp_server, register_server
    from tenancy.mongo import master_db

    register_server(master_db(), bundled_erp_server("erp-routes", records=RECORDS, seed=SEED))
    return "erp-routes"


def bearer(key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}


def erp_project(make_tenant: Any, loopback: Any, server: str, plan: Plan | None = None) -> tuple[str, str]:
    from tenancy.registry import register_model

    register_model(ModelConfig(name="erp-routes-model", model="openai/gpt-4o-mini", api_base=loopback.api_base,
                               api_key_env="LOOPBACK_API_KEY"))
    return make_tenant("erp", template_id="erp-analyst", plan=plan or Plan(),
                       agent=AgentSettings(model="erp-routes-model", mcp_servers=[server]))


def executions(project_id: str) -> int:
    from tenancy.mongo import tenant_db

    return tenant_db(project_id).executions.count_documents({})


def test_erp_status_names_the_projects_erp_server_its_tables_record_counts_and_latency(
    ingress: str, make_tenant: Any, loopback: Any, erp_server: str,
) -> None:
    from mcp_clients.erp_server.generator import generate

    project_id, key = erp_project(make_tenant, loopback, erp_server)
    answer = http.get(f"{ingress}/api/v1/erp/status", headers=bearer(key))
    assert answer.status_code == 200, answer.text
    status = answer.json()
    data = generate(RECORDS, SEED, project_id)
    assert status["reachable"] is True and status["project_id"] == project_id and status["server"] == erp_server
    assert status["tables"] == {name: len(rows) for name, rows in data.tables.items()}
    assert status["records"] == data.records and status["company"] == data.company
    assert set(status["tools"]) == {"erp_describe", "erp_read"}
    assert 0 < status["latency_ms"] < 15_000
    as_admin = http.get(f"{ingress}/api/v1/erp/status", headers=ADMIN, params={"project_id": project_id})
    assert as_admin.status_code == 200 and as_admin.json()["tables"] == status["tables"]


def test_erp_status_answers_503_with_the_reason_when_the_server_cannot_be_reached(
    ingress: str, make_tenant: Any, loopback: Any, services: dict[str, str],
) -> None:
    from mcp_clients.registry import register_server
    from schemas.mcp import McpServerConfig
    from tenancy.mongo import master_db

    register_server(master_db(), McpServerConfig(
        name="erp-gone", command=sys.executable, args=["-c", "import sys; sys.exit(3)"],
        allowed_tools=["erp_describe", "erp_read"], timeout_s=5))
    _, key = erp_project(make_tenant, loopback, "erp-gone")
    answer = http.get(f"{ingress}/api/v1/erp/status", headers=bearer(key))
    assert answer.status_code == 503, answer.text
    status = answer.json()
    assert status["reachable"] is False and status["server"] == "erp-gone"
    assert "erp-gone" in status["reason"] and status["code"].startswith("tool_")


def test_an_analysis_started_async_is_read_back_by_its_execution_id_with_its_report(
    ingress: str, worker: Any, make_tenant: Any, loopback: Any, erp_server: str,
) -> None:
    project_id, key = erp_project(make_tenant, loopback, erp_server)
    answer = http.post(f"{ingress}/api/v1/erp/analyze", headers=bearer(key), json={**QUICK, "quick": True})
    assert answer.status_code == 202, answer.text
    execution_id = answer.json()["execution_id"]
    assert answer.headers["location"] == f"/api/v1/erp/analyze/{execution_id}"

    def ended() -> dict[str, Any] | None:
        body: dict[str, Any] = http.get(f"{ingress}{answer.headers['location']}", headers=bearer(key)).json()
        return body if body["status"] in ("succeeded", "failed") else None

    analysis = wait_for(ended, timeout=120, interval=0.3)
    assert analysis["status"] == "succeeded", analysis["error"]
    assert analysis["project_id"] == project_id and analysis["execution_id"] == execution_id
    report = analysis["report"]
    assert report["mode"] == "quick" and [c["category"] for c in report["categories"]] == ["invoice_matching"]
    assert report["categories"][0]["findings"], "the bundled ERP plants invoice mismatches"
    assert report["coverage"]["server"] == erp_server
    again = http.post(f"{ingress}/api/v1/erp/analyze", headers=bearer(key),
                      json={**QUICK, "quick": True, "idempotency_key": "weekly-1"})
    same = http.post(f"{ingress}/api/v1/erp/analyze", headers=bearer(key),
                     json={**QUICK, "quick": True, "idempotency_key": "weekly-1"})
    assert same.json()["execution_id"] == again.json()["execution_id"] and same.json()["duplicate"] is True


def test_a_quick_analysis_answers_its_report_in_one_request(
    ingress: str, worker: Any, make_tenant: Any, loopback: Any, erp_server: str,
) -> None:
    project_id, key = erp_project(make_tenant, loopback, erp_server)
    answer = http.post(f"{ingress}/api/v1/erp/quick-analysis", headers=bearer(key), json=QUICK)
    assert answer.status_code == 200, answer.text
    analysis = answer.json()
    assert analysis["status"] == "succeeded", analysis["error"]
    assert analysis["report"]["mode"] == "quick" and analysis["report"]["research"]["status"] == "skipped"
    assert analysis["usage"]["total_tokens"] > 0
    read_back = http.get(f"{ingress}/api/v1/erp/analyze/{analysis['execution_id']}", headers=bearer(key))
    assert read_back.json()["report"] == analysis["report"]
    assert executions(project_id) == 1


def test_a_quick_analysis_not_done_in_time_answers_202_with_where_to_read_it(
    ingress: str, worker: Any, make_tenant: Any, loopback: Any, erp_server: str,
) -> None:
    _, key = erp_project(make_tenant, loopback, erp_server, plan=Plan(requests_per_minute=1))
    first = http.post(f"{ingress}/api/v1/erp/analyze", headers=bearer(key), json={**QUICK, "quick": True})
    assert first.status_code == 202
    answer = http.post(f"{ingress}/api/v1/erp/quick-analysis", headers=bearer(key), json=QUICK,
                       params={"wait_s": 1})
    assert answer.status_code == 202, answer.text
    assert answer.json()["status"] in ("queued", "running") and answer.json()["report"] is None
    assert answer.headers["location"] == f"/api/v1/erp/analyze/{answer.json()['execution_id']}"


@pytest.mark.parametrize(("route", "body", "field"), [
    ("analyze", {"prompt": "x", "categories": ["payroll"]}, "categories"),
    ("analyze", {"prompt": ""}, "prompt"),
    ("analyze", {"prompt": "x", "tenant_id": "someone-else"}, "tenant_id"),
    ("quick-analysis", {**QUICK, "quick": False}, "quick"),
    ("quick-analysis", {"categories": ["inventory"]}, "prompt"),
], ids=["unknown-category", "empty-prompt", "foreign-field", "quick-false", "no-prompt"])
def test_an_invalid_analysis_request_is_refused_with_422_naming_the_field_and_starts_nothing(
    ingress: str, make_tenant: Any, loopback: Any, erp_server: str, route: str, body: dict[str, Any], field: str,
) -> None:
    project_id, key = erp_project(make_tenant, loopback, erp_server)
    answer = http.post(f"{ingress}/api/v1/erp/{route}", headers=bearer(key), json=body)
    assert answer.status_code == 422, answer.text
    assert field in [f["loc"][-1] for f in answer.json()["error"]["fields"]] or field in str(
        answer.json()["error"]["fields"])
    if field == "categories":
        assert "invoice_matching" in answer.text, "the error names the categories that exist"
    assert executions(project_id) == 0


def test_erp_routes_refuse_missing_credentials_suspended_projects_and_spent_budgets_and_start_nothing(
    ingress: str, make_tenant: Any, loopback: Any, erp_server: str,
) -> None:
    from schemas.tenants import TenantStatus
    from tenancy.registry import set_status

    project_id, key = erp_project(make_tenant, loopback, erp_server)
    for headers in ({}, {"Authorization": "Bearer tq_never-issued"}):
        assert http.post(f"{ingress}/api/v1/erp/analyze", headers=headers, json=QUICK).status_code == 401
        assert http.get(f"{ingress}/api/v1/erp/status", headers=headers).status_code == 401
    no_project = http.post(f"{ingress}/api/v1/erp/analyze", headers=ADMIN, json=QUICK)
    assert no_project.status_code == 422 and "project_id" in no_project.text
    unknown = http.post(f"{ingress}/api/v1/erp/analyze", headers=ADMIN, json=QUICK,
                        params={"project_id": f"nobody-{uuid.uuid4().hex[:6]}"})
    assert unknown.status_code == 404 and "GET /v1/tenants" in unknown.text
    set_status(project_id, TenantStatus.suspended)
    for route in ("analyze", "quick-analysis"):
        refused = http.post(f"{ingress}/api/v1/erp/{route}", headers=bearer(key), json=QUICK)
        assert refused.status_code == 403 and refused.json()["error"]["code"] == "tenant_suspended"
    spent_id, spent_key = erp_project(make_tenant, loopback, erp_server, plan=Plan(monthly_budget_usd=0))
    for route in ("analyze", "quick-analysis"):
        refused = http.post(f"{ingress}/api/v1/erp/{route}", headers=bearer(spent_key), json=QUICK)
        assert refused.status_code == 402 and refused.json()["error"]["code"] == "budget_exceeded"
    assert executions(spent_id) == 0
    assert executions(project_id) == 0


def test_another_projects_analysis_and_a_job_of_another_kind_are_not_found(
    ingress: str, worker: Any, make_tenant: Any, loopback: Any, erp_server: str,
) -> None:
    project_id, key = erp_project(make_tenant, loopback, erp_server)
    other_id, other_key = erp_project(make_tenant, loopback, erp_server)
    submitted = http.post(f"{ingress}/api/v1/erp/analyze", headers=bearer(key), json={**QUICK, "quick": True})
    execution_id = submitted.json()["execution_id"]
    for headers, params in ((bearer(other_key), {}), (ADMIN, {"project_id": other_id})):
        answer = http.get(f"{ingress}/api/v1/erp/analyze/{execution_id}", headers=headers, params=params)
        assert answer.status_code == 404 and answer.json()["error"]["code"] == "job_not_found"
    foreign = http.get(f"{ingress}/api/v1/erp/analyze/{execution_id}", headers=bearer(other_key),
                       params={"project_id": project_id})
    assert foreign.status_code == 404 and foreign.json()["error"]["code"] == "unknown_tenant"
    chat = http.post(f"{ingress}/v1/jobs", headers=bearer(key), json={"kind": "chat_draft", "payload": CHAT})
    not_erp = http.get(f"{ingress}/api/v1/erp/analyze/{chat.json()['job_id']}", headers=bearer(key))
    assert not_erp.status_code == 404 and "chat_draft" in not_erp.json()["error"]["message"]
    assert http.get(f"{ingress}/api/v1/erp/analyze/{execution_id}", headers=bearer(key)).status_code == 200
