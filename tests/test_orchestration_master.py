"""The orchestration API's master data over real HTTP (a uvicorn ingress): projects, agent templates,
versioned system prompts, model configs, tools, MCP servers, the ERP setup and the health check; what each
refuses, that a refusal writes nothing, and that every change is audited."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from tenantq.localfleet import LocalFleet
from tests.http_ingress import ADMIN, bearer, running_ingress

MASTER = "/api/v1/master"


@pytest.fixture(scope="module")
def http(fleet: LocalFleet) -> Iterator[httpx.Client]:
    with running_ingress(fleet.env) as client:
        yield client


def new_id(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:10]}"


def audit_entries(entity: str, entity_id: str) -> list[dict[str, Any]]:
    from tenancy.mongo import master_db

    return list(master_db().audit_log.find({"entity": entity, "entity_id": entity_id}).sort("at", 1))


def walk(http: httpx.Client, path: str, limit: int) -> list[dict[str, Any]]:
    """Every item of a list, page by page."""
    items: list[dict[str, Any]] = []
    cursor = None
    while True:
        page = http.get(path, params={"limit": limit, **({"cursor": cursor} if cursor else {})}, headers=ADMIN)
        assert page.status_code == 200, page.text
        items += page.json()["items"]
        cursor = page.json()["next_cursor"]
        if cursor is None:
            return items


def test_an_operator_creates_a_project_with_its_first_key_then_lists_and_reads_it(http: httpx.Client) -> None:
    project_id = new_id("proj")
    created = http.post(f"{MASTER}/projects", headers=ADMIN, json={
        "project_id": project_id, "project_name": "Autohaus Nord", "customer_name": "Nord GmbH",
        "description": "Lead replies", "created_by": "ops@example.com", "weight": 3, "monthly_budget_usd": 20})
    assert created.status_code == 201, created.text
    body = created.json()
    assert body["api_key"].startswith("tq_")
    project = body["project"]
    assert project["project_name"] == "Autohaus Nord" and project["customer_name"] == "Nord GmbH"
    assert project["plan"]["weight"] == 3 and project["plan"]["monthly_budget_usd"] == 20
    assert http.get(f"{MASTER}/projects/{project_id}", headers=ADMIN).json() == project
    assert project_id in [p["project_id"] for p in walk(http, f"{MASTER}/projects", limit=2)]
    assert http.get("/v1/tenants/" + project_id, headers=ADMIN).json()["plan"]["weight"] == 3, "a project is a tenant"
    assert http.get(f"/v1/jobs/{uuid.uuid4().hex}", headers=bearer(body["api_key"])).status_code == 404
    [entry] = audit_entries("project", project_id)
    assert entry["actor"] == "admin" and entry["action"] == "created" and entry["before"] is None
    assert entry["after"]["customer_name"] == "Nord GmbH" and "api_key" not in str(entry)


def test_a_project_with_an_unknown_template_a_bad_plan_or_a_taken_id_is_refused_and_nothing_is_written(
    http: httpx.Client,
) -> None:
    from tenancy.mongo import master_db

    project_id = new_id("proj")
    unknown = http.post(f"{MASTER}/projects", headers=ADMIN, json={"project_id": project_id, "template_id": "nope"})
    assert unknown.status_code == 422
    error = unknown.json()["error"]
    assert error["code"] == "unknown_reference" and "'nope'" in error["message"]
    assert "car-dealer" in error["known"] and "default" in error["message"]
    bad_plan = http.post(f"{MASTER}/projects", headers=ADMIN, json={"project_id": project_id, "weight": 0})
    assert bad_plan.status_code == 422 and bad_plan.json()["error"]["fields"][0]["loc"][-1] == "weight"
    assert http.get(f"{MASTER}/projects/{project_id}", headers=ADMIN).status_code == 404
    assert master_db().api_keys.count_documents({"tenant_id": project_id}) == 0
    assert http.post(f"{MASTER}/projects", headers=ADMIN, json={"project_id": project_id}).status_code == 201
    taken = http.post(f"{MASTER}/projects", headers=ADMIN, json={"project_id": project_id})
    assert taken.status_code == 409
    assert master_db().api_keys.count_documents({"tenant_id": project_id}) == 1
    assert len(audit_entries("project", project_id)) == 1


def test_a_system_prompt_keeps_every_version_and_one_that_does_not_compile_is_refused(http: httpx.Client) -> None:
    prompt_id = new_id("prompt")
    created = http.post(f"{MASTER}/system-prompts", headers=ADMIN, json={
        "prompt_id": prompt_id, "name": "Greeter", "template": "Hello {{ company }} (v1)"})
    assert created.status_code == 201, created.text
    assert created.json()["version"] == 1
    again = http.post(f"{MASTER}/system-prompts", headers=ADMIN, json={"prompt_id": prompt_id, "template": "x"})
    assert again.status_code == 409 and f"PUT /api/v1/master/system-prompts/{prompt_id}" in again.text
    updated = http.put(f"{MASTER}/system-prompts/{prompt_id}", headers=ADMIN,
                       json={"template": "Hi {{ company }} (v2)", "created_by": "jane"})
    assert updated.status_code == 200 and updated.json()["version"] == 2
    broken = http.put(f"{MASTER}/system-prompts/{prompt_id}", headers=ADMIN, json={"template": "{% if x %}open"})
    assert broken.status_code == 422
    assert broken.json()["error"]["code"] == "template_error" and "line" in broken.json()["error"]["message"]
    read = http.get(f"{MASTER}/system-prompts/{prompt_id}", headers=ADMIN).json()
    assert read["version"] == 2 and read["template"] == "Hi {{ company }} (v2)"
    assert [(v["version"], v["template"]) for v in read["versions"]] == [
        (2, "Hi {{ company }} (v2)"), (1, "Hello {{ company }} (v1)")]
    assert read["versions"][0]["created_by"] == "jane"
    assert prompt_id in [p["prompt_id"] for p in walk(http, f"{MASTER}/system-prompts", limit=3)]
    assert http.get(f"{MASTER}/system-prompts/{new_id('none')}", headers=ADMIN).status_code == 404
    entries = audit_entries("system_prompt", prompt_id)
    assert [e["action"] for e in entries] == ["created", "updated"]
    assert entries[1]["before"]["version"] == 1 and entries[1]["after"]["version"] == 2


def test_a_seeded_prompt_becomes_version_one_when_it_is_first_updated(http: httpx.Client) -> None:
    from tenancy.mongo import master_db

    prompt_id = new_id("seeded")
    master_db().system_prompts.insert_one({"_id": prompt_id, "template": "seeded {{ kind }}"})
    updated = http.put(f"{MASTER}/system-prompts/{prompt_id}", headers=ADMIN, json={"template": "newer {{ kind }}"})
    assert updated.status_code == 200 and updated.json()["version"] == 2
    versions = http.get(f"{MASTER}/system-prompts/{prompt_id}", headers=ADMIN).json()["versions"]
    assert [(v["version"], v["template"]) for v in versions] == [(2, "newer {{ kind }}"), (1, "seeded {{ kind }}")]


def test_agent_templates_are_created_read_listed_and_replaced_and_unknown_references_name_what_exists(
    http: httpx.Client,
) -> None:
    prompt_id, agent_id = new_id("prompt"), new_id("agent")
    http.post(f"{MASTER}/system-prompts", headers=ADMIN, json={"prompt_id": prompt_id, "template": "You help."})
    spec = {"agent_id": agent_id, "name": "Helper", "description": "Answers chats", "kind": "chat_draft",
            "system_prompt_id": prompt_id, "personality": "calm", "model": "offline", "dos": ["be brief"]}
    created = http.post(f"{MASTER}/agents", headers=ADMIN, json=spec)
    assert created.status_code == 201, created.text
    assert created.json()["prompts"] == {"chat_draft": prompt_id}
    assert http.post(f"{MASTER}/agents", headers=ADMIN, json=spec).status_code == 409
    replaced = http.put(f"{MASTER}/agents/{agent_id}", headers=ADMIN, json={**spec, "personality": "cheerful"})
    assert replaced.status_code == 200 and replaced.json()["personality"] == "cheerful"
    assert http.get(f"{MASTER}/agents/{agent_id}", headers=ADMIN).json()["personality"] == "cheerful"
    assert agent_id in [a["agent_id"] for a in walk(http, f"{MASTER}/agents", limit=4)]
    assert [e["action"] for e in audit_entries("agent_template", agent_id)] == ["created", "updated"]

    refused = new_id("agent")
    for field, value, named in (("system_prompt_id", "no-such-prompt", "chat_draft"),
                                ("model", "no-such-config", "offline"),
                                ("mcp_servers", ["no-such-server"], None)):
        answer = http.post(f"{MASTER}/agents", headers=ADMIN, json={**spec, "agent_id": refused, field: value})
        assert answer.status_code == 422, (field, answer.text)
        error = answer.json()["error"]
        assert error["code"] == "unknown_reference" and "no-such" in error["message"]
        if named:
            assert named in error["known"], error
    assert http.get(f"{MASTER}/agents/{refused}", headers=ADMIN).status_code == 404
    mismatch = http.put(f"{MASTER}/agents/{agent_id}", headers=ADMIN, json={**spec, "agent_id": refused})
    assert mismatch.status_code == 422


def test_model_configs_tools_and_mcp_servers_are_created_listed_read_and_replaced(http: httpx.Client) -> None:
    model = new_id("model")
    config = {"name": model, "model": "openai/gpt-4o-mini", "api_key_env": "OPENAI_API_KEY"}
    assert http.post(f"{MASTER}/model-configs", headers=ADMIN, json=config).status_code == 201
    assert http.post(f"{MASTER}/model-configs", headers=ADMIN, json=config).status_code == 409
    changed = http.put(f"{MASTER}/model-configs/{model}", headers=ADMIN, json={**config, "timeout_s": 20})
    assert changed.status_code == 200 and changed.json()["timeout_s"] == 20
    assert http.get(f"{MASTER}/model-configs/{model}", headers=ADMIN).json()["timeout_s"] == 20

    server = new_id("srv")
    spec = {"name": server, "transport": "http", "url": "https://mcp.example/api",
            "headers": {"Authorization": "${EXAMPLE_TOKEN}"}}
    assert http.post(f"{MASTER}/mcp-servers", headers=ADMIN, json=spec).status_code == 201
    literal = http.post(f"{MASTER}/mcp-servers", headers=ADMIN, json={
        **spec, "name": new_id("srv"), "headers": {"Authorization": "Bearer sk-literal"}})
    assert literal.status_code == 422, "a pasted secret is never stored"
    assert http.get(f"{MASTER}/mcp-servers/{server}", headers=ADMIN).json()["url"] == "https://mcp.example/api"

    tool = new_id("tool")
    assert http.post(f"{MASTER}/tools", headers=ADMIN, json={
        "name": tool, "description": "Looks things up", "mcp_server": server}).status_code == 201
    orphan = http.post(f"{MASTER}/tools", headers=ADMIN, json={"name": new_id("tool"), "mcp_server": "nowhere"})
    assert orphan.status_code == 422 and server in orphan.json()["error"]["message"] + str(orphan.json())
    assert http.put(f"{MASTER}/tools/{tool}", headers=ADMIN, json={"name": tool, "description": "v2"}).json()[
        "description"] == "v2"
    for path, name in (("model-configs", model), ("mcp-servers", server), ("tools", tool)):
        assert name in [i["name"] for i in walk(http, f"{MASTER}/{path}", limit=5)]
        assert http.get(f"{MASTER}/{path}/{new_id('none')}", headers=ADMIN).status_code == 404
    assert [e["action"] for e in audit_entries("model_config", model)] == ["created", "updated"]
    assert [e["action"] for e in audit_entries("mcp_server", server)] == ["created"]


def test_erp_defaults_are_set_up_once_and_calling_again_creates_nothing(http: httpx.Client) -> None:
    first = http.post(f"{MASTER}/setup/erp-defaults", headers=ADMIN)
    assert first.status_code == 200
    second = http.post(f"{MASTER}/setup/erp-defaults", headers=ADMIN).json()
    assert second["created"] == []
    assert set(second["existing"]) == {"system_prompt:erp_analysis", "mcp_server:erp", "tool:erp_describe",
                                       "tool:erp_read", "agent_template:erp-analyst"}
    assert http.get(f"{MASTER}/mcp-servers/erp", headers=ADMIN).json()["allowed_tools"] == ["erp_describe", "erp_read"]


def test_master_health_reports_the_stores_with_latencies_and_live_workers_per_class(
    http: httpx.Client, worker: Any,
) -> None:
    report = http.get(f"{MASTER}/health", headers=ADMIN)
    assert report.status_code == 200
    body = report.json()
    assert body["status"] == "ok", body
    assert body["master_database"]["ok"] and body["master_database"]["latency_ms"] >= 0
    assert body["redis"]["ok"] and body["redis"]["latency_ms"] >= 0
    for name in ("interactive", "standard", "batch"):
        assert body["workers"][name]["alive"] >= 1 and body["workers"][name]["concurrency"] >= 1


@pytest.mark.parametrize(("method", "path"), [
    ("POST", "/projects"), ("GET", "/projects"), ("GET", "/projects/x"), ("POST", "/agents"), ("GET", "/agents"),
    ("GET", "/agents/default"), ("PUT", "/agents/default"), ("POST", "/system-prompts"), ("GET", "/system-prompts"),
    ("GET", "/system-prompts/chat_draft"), ("POST", "/model-configs"), ("GET", "/model-configs"), ("POST", "/tools"),
    ("GET", "/tools"), ("POST", "/mcp-servers"), ("GET", "/mcp-servers"), ("POST", "/setup/erp-defaults"),
    ("GET", "/health"),
])
def test_master_routes_refuse_a_project_key_and_a_missing_token(
    http: httpx.Client, make_tenant: Any, method: str, path: str,
) -> None:
    _, key = make_tenant("key")
    for headers in (bearer(key), {}):
        answer = http.request(method, MASTER + path, headers=headers, json={})
        assert answer.status_code == 401, answer.text


DEEP: Any = "leaf"
for _ in range(400):
    DEEP = [DEEP]
BAD_INPUT = [
    ("POST", "/master/projects", []), ("POST", "/master/projects", {"project_id": 5}),
    ("POST", "/master/projects", {"project_id": "x" * 100}), ("POST", "/master/projects", {"project_id": "ok-1",
                                                                                          "plan": "flat"}),
    ("POST", "/master/projects", {"project_id": "ok-2", "max_in_flight": -1}),
    ("GET", "/master/projects/Bad_ID", None), ("GET", "/master/projects?limit=abc", None),
    ("GET", "/master/projects?cursor=!!!", None), ("GET", "/master/agents?limit=500", None),
    ("POST", "/master/agents", {"agent_id": "../x", "system_prompt_id": "chat_draft"}),
    ("POST", "/master/agents", {"agent_id": "x-1", "prompts": {"no_kind": "chat_draft"}}),
    ("POST", "/master/agents", {"agent_id": "x-2"}), ("POST", "/master/agents", {"agent_id": "x-3", "kind": "noop",
                                                                                 "system_prompt_id": "chat_draft"}),
    ("PUT", "/master/agents/no-such-agent", {"agent_id": "no-such-agent", "system_prompt_id": "chat_draft"}),
    ("POST", "/master/system-prompts", {"prompt_id": "p-1", "template": "{% for %}"}),
    ("POST", "/master/system-prompts", {"prompt_id": "p-2", "template": "x" * 70_000}),
    ("PUT", "/master/system-prompts/no-such-prompt", {"template": "x"}),
    ("GET", "/master/system-prompts/%2e%2e", None), ("POST", "/master/model-configs", {"name": "m", "model": "a"}),
    ("POST", "/master/tools", {"name": "bad name"}), ("POST", "/master/tools", {"name": "deep", "input_schema": DEEP}),
    ("POST", "/master/tools", {"name": "deeper", "input_schema": {"d": DEEP}}),
    ("POST", "/master/mcp-servers", {"name": "s", "transport": "stdio"}),
    ("PUT", "/master/mcp-servers/other", {"name": "s", "command": "x"}),
    ("GET", "/projects/Bad_ID/agent-instances", None), ("GET", "/projects/no-such-project/executions", None),
]
PROJECT_BAD_INPUT = [
    ("POST", "agent-instances", {"name": "x", "template_id": "default", "kind": "noop"}),
    ("POST", "agent-instances", {"name": "x", "template_id": "default", "kind": "chat_draft",
                                 "system_prompt_variables": {"deep": DEEP}}),
    ("POST", "agent-instances", {"name": "x", "template_id": "default", "kind": "chat_draft",
                                 "system_prompt_variables": {"big": "y" * 20_000}}),
    ("POST", "agent-instances", {"name": "x", "template_id": "default", "kind": "chat_draft",
                                 "custom_settings": {"timeout": 0}}),
    ("PUT", "agent-instances/no-such-instance", {"name": "x", "template_id": "default", "kind": "chat_draft"}),
    ("GET", "agent-instances/no-such-instance", None),
    ("POST", "executions", {"kind": "chat_draft", "input_data": "text"}),
    ("POST", "executions", {"kind": "chat_draft", "input_data": {"message": "hi", "conversation_id": "c",
                                                                "lead_id": "l"}, "variables": {"1bad": 1}}),
    ("POST", "executions", {"kind": "noop", "input_data": {}}),
    ("POST", "executions", {"instance_id": "../../x", "input_data": {}}),
    ("GET", "executions?from=yesterday", None), ("GET", "executions?cursor=WyJ4IiwgInkiXQ", None),
    ("GET", "executions/no-such-execution", None), ("GET", "executions/no-such-execution/result", None),
]


@pytest.mark.parametrize(("method", "path", "body"), BAD_INPUT, ids=[f"{m} {p}" for m, p, _ in BAD_INPUT])
def test_bad_master_input_is_refused_with_a_4xx_that_says_why(
    http: httpx.Client, method: str, path: str, body: Any,
) -> None:
    answer = http.request(method, "/api/v1" + path, headers=ADMIN, json=body)
    assert answer.status_code in (404, 409, 422), answer.text
    assert answer.json()["error"]["message"]


@pytest.fixture(scope="module")
def bad_input_project(http: httpx.Client) -> tuple[str, dict[str, str]]:
    project_id = new_id("bad")
    created = http.post(f"{MASTER}/projects", headers=ADMIN, json={"project_id": project_id})
    return project_id, bearer(created.json()["api_key"])


@pytest.mark.parametrize(("method", "path", "body"), PROJECT_BAD_INPUT,
                         ids=[f"{m} {p}" for m, p, _ in PROJECT_BAD_INPUT])
def test_bad_project_input_is_refused_with_a_4xx_and_writes_nothing(
    http: httpx.Client, bad_input_project: tuple[str, dict[str, str]], method: str, path: str, body: Any,
) -> None:
    from tenancy.mongo import tenant_db

    project_id, auth = bad_input_project
    answer = http.request(method, f"/api/v1/projects/{project_id}/{path}", headers=auth, json=body)
    assert answer.status_code in (404, 422), answer.text
    assert answer.json()["error"]["message"]
    db = tenant_db(project_id)
    assert db.agent_instances.count_documents({}) == 0 and db.executions.count_documents({}) == 0
