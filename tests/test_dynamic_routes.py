"""The deprecated dynamic-agent routes over real HTTP with a real worker: each still works as before, says it
is deprecated and links its successor on every answer, and sees only its own project."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from schemas.agents import AgentSettings, ModelConfig
from tenantq.localfleet import LocalFleet
from tests.conftest import wait_for
from tests.real_ingress import running_ingress

pytestmark = pytest.mark.timeout(120)
ADMIN = {"Authorization": "Bearer test-admin-token"}
CHAT = {"message": "Is the estate still there?", "conversation_id": "dyn-1", "lead_id": "lead-dyn"}
http = httpx.Client(timeout=60)


@pytest.fixture(scope="module")
def ingress(fleet: LocalFleet, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    with running_ingress(fleet.env, str(tmp_path_factory.mktemp("ingress") / "ingress.log")) as url:
        yield url
    http.close()


def bearer(key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}


def deprecated(answer: httpx.Response, successor: str | None) -> None:
    assert answer.headers["deprecation"] == "true"
    if successor is None:
        assert "link" not in answer.headers
    else:
        assert answer.headers["link"] == f'<{successor}>; rel="successor-version"'


def test_an_agent_executed_through_the_deprecated_routes_is_followed_to_its_result(
    ingress: str, worker: Any, make_tenant: Any, loopback: Any,
) -> None:
    from tenancy.registry import register_model

    register_model(ModelConfig(name="dyn-model", model="openai/gpt-4o-mini", api_base=loopback.api_base,
                               api_key_env="LOOPBACK_API_KEY"))
    project_id, key = make_tenant("dyn", agent=AgentSettings(model="dyn-model"))
    base = f"{ingress}/api/v1/dynamic"
    started = http.post(f"{base}/execute/chat_draft", headers=bearer(key), json={"payload": CHAT})
    assert started.status_code == 202, started.text
    deprecated(started, f"/api/v1/projects/{project_id}/executions")
    execution_id = started.json()["job_id"]

    def ended() -> dict[str, Any] | None:
        status: dict[str, Any] = http.get(f"{base}/execution/{execution_id}/status", headers=bearer(key)).json()
        return status if status["status"] in ("succeeded", "failed") else None

    status = wait_for(ended, timeout=60)
    assert status["status"] == "succeeded" and status["kind"] == "chat_draft"
    result = http.get(f"{base}/execution/{execution_id}/result", headers=bearer(key))
    deprecated(result, f"/api/v1/projects/{project_id}/executions/{execution_id}/result")
    assert result.json()["result"]["reply"] and result.json()["usage"]["total_tokens"] > 0

    listed = http.get(f"{base}/executions", headers=bearer(key), params={"limit": 1})
    deprecated(listed, f"/api/v1/projects/{project_id}/executions")
    assert [e["execution_id"] for e in listed.json()["executions"]] == [execution_id]
    templates = http.get(f"{base}/templates", headers=bearer(key))
    deprecated(templates, "/api/v1/templates")
    assert {"default", "car-dealer", "erp-analyst"} <= {t["template_id"] for t in templates.json()}


def test_the_executions_list_pages_newest_first_and_filters_by_status(
    ingress: str, make_tenant: Any,
) -> None:
    _, key = make_tenant("dyn")
    ids = []
    for n in range(5):
        answer = http.post(f"{ingress}/api/v1/dynamic/execute/chat_draft", headers=bearer(key),
                           json={"payload": {**CHAT, "conversation_id": f"c{n}"}})
        ids.append(answer.json()["job_id"])
    seen: list[str] = []
    cursor = None
    while True:
        page = http.get(f"{ingress}/api/v1/dynamic/executions", headers=bearer(key),
                        params={"limit": 2, **({"cursor": cursor} if cursor else {})}).json()
        seen += [e["execution_id"] for e in page["executions"]]
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert seen == list(reversed(ids))
    failed = http.get(f"{ingress}/api/v1/dynamic/executions", headers=bearer(key), params={"status": "failed"})
    assert failed.json()["executions"] == []


def test_deprecated_routes_refuse_like_their_successors_and_still_say_they_are_deprecated(
    ingress: str, make_tenant: Any,
) -> None:
    from tenancy.mongo import tenant_db

    project_id, key = make_tenant("dyn")
    other_id, other_key = make_tenant("dyn")
    base = f"{ingress}/api/v1/dynamic"
    unknown_agent = http.post(f"{base}/execute/summon_demons", headers=bearer(key), json={"payload": CHAT})
    assert unknown_agent.status_code == 422 and unknown_agent.json()["error"]["code"] == "unknown_kind"
    assert "chat_draft, email_reply, erp_analysis" in unknown_agent.json()["error"]["message"]
    deprecated(unknown_agent, f"/api/v1/projects/{project_id}/executions")
    invalid = http.post(f"{base}/execute/chat_draft", headers=bearer(key), json={"payload": {"message": "hi"}})
    assert invalid.status_code == 422 and "lead_id" in invalid.text
    no_key = http.post(f"{base}/execute/chat_draft", json={"payload": CHAT})
    assert no_key.status_code == 401
    deprecated(no_key, None)
    assert tenant_db(project_id).executions.count_documents({}) == 0

    mine = http.post(f"{base}/execute/chat_draft", headers=bearer(key), json={"payload": CHAT}).json()["job_id"]
    for route in (f"execution/{mine}/status", f"execution/{mine}/result"):
        foreign = http.get(f"{base}/{route}", headers=bearer(other_key))
        assert foreign.status_code == 404 and foreign.json()["error"]["code"] == "job_not_found"
        deprecated(foreign, f"/api/v1/projects/{other_id}/executions/{mine}" + (
            "/result" if route.endswith("result") else ""))
    assert http.get(f"{base}/executions", headers=bearer(other_key)).json()["executions"] == []
    as_admin = http.get(f"{base}/execution/{mine}/status", headers=ADMIN, params={"project_id": project_id})
    assert as_admin.status_code == 200 and as_admin.json()["execution_id"] == mine
    missing = http.get(f"{base}/execution/{uuid.uuid4().hex}/status", headers=bearer(key))
    assert missing.status_code == 404


def test_openapi_marks_every_dynamic_route_deprecated_and_no_other(ingress: str) -> None:
    paths = http.get(f"{ingress}/openapi.json").json()["paths"]
    dynamic = {(path, method): op for path, ops in paths.items() for method, op in ops.items()
               if path.startswith("/api/v1/dynamic/")}
    assert len(dynamic) == 5 and all(op.get("deprecated") is True for op in dynamic.values())
    others = [op for path, ops in paths.items() if not path.startswith("/api/v1/dynamic/") for op in ops.values()]
    assert not any(op.get("deprecated") for op in others)
