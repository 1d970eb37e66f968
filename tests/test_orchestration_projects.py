"""A project's agent instances and executions over real HTTP (a uvicorn ingress) run by a real worker, with
the loopback OpenAI-compatible server as the model: the instance's resolution (template, overrides, pinned
prompt version, variables), sync and async runs, both views of one execution, pagination, default instances,
and isolation between projects on every route."""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from schemas.agents import ModelConfig
from tenantq.localfleet import LocalFleet
from tests.conftest import wait_for
from tests.http_ingress import ADMIN, bearer, running_ingress

MASTER = "/api/v1/master"
CHAT = {"message": "Is the estate still available?", "conversation_id": "c-1", "lead_id": "l-1"}
EMAIL = {"from": "jane@example.com", "to": "sales@dealer.example", "subject": "Price",
         "body": "What does the estate cost?", "message_id": "<o1@example.com>", "lead_id": "l-2"}
ERP = {"prompt": "Which supplier invoices do not match their orders?", "categories": ["invoice_matching"],
       "quick": True, "system_details": {"erp": "SAP S/4HANA", "company_code": "1000"}}


@pytest.fixture(scope="module")
def http(fleet: LocalFleet) -> Iterator[httpx.Client]:
    with running_ingress(fleet.env) as client:
        yield client


def new_id(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:10]}"


def loop_model(loopback: Any, **behaviour: Any) -> str:
    """A model config of its own, answered by the loopback server, so a test reads only its own requests."""
    from tenancy.registry import register_model

    name = new_id("loop")
    loopback.control(model=name, **behaviour)
    register_model(ModelConfig(name=name, model=f"openai/{name}", api_base=loopback.api_base,
                               api_key_env="LOOPBACK_API_KEY"))
    return name


def project(http: httpx.Client, **fields: Any) -> tuple[str, dict[str, str]]:
    project_id = new_id("p")
    created = http.post(f"{MASTER}/projects", headers=ADMIN, json={"project_id": project_id, **fields})
    assert created.status_code == 201, created.text
    return project_id, bearer(created.json()["api_key"])


def greeter(http: httpx.Client) -> tuple[str, str]:
    """A chat template whose prompt has two versions, both using {{ company }} and {{ tone }}."""
    prompt_id, agent_id = new_id("greet"), new_id("chat")
    http.post(f"{MASTER}/system-prompts", headers=ADMIN, json={
        "prompt_id": prompt_id, "template": "V1 {{ agent.name }} of {{ company }}, {{ tone }}."})
    http.put(f"{MASTER}/system-prompts/{prompt_id}", headers=ADMIN, json={
        "template": "V2 {{ agent.name }} of {{ company }}, {{ tone }}."})
    created = http.post(f"{MASTER}/agents", headers=ADMIN, json={
        "agent_id": agent_id, "name": "Greeter", "kind": "chat_draft", "system_prompt_id": prompt_id})
    assert created.status_code == 201, created.text
    return agent_id, prompt_id


def instance(http: httpx.Client, project_id: str, auth: dict[str, str], **spec: Any) -> dict[str, Any]:
    created = http.post(f"/api/v1/projects/{project_id}/agent-instances", headers=auth, json=spec)
    assert created.status_code == 201, created.text
    body: dict[str, Any] = created.json()
    return body


def execute(http: httpx.Client, project_id: str, auth: dict[str, str], **body: Any) -> httpx.Response:
    return http.post(f"/api/v1/projects/{project_id}/executions", headers=auth, json=body)


def finished(http: httpx.Client, project_id: str, auth: dict[str, str], execution_id: str) -> dict[str, Any]:
    def done() -> dict[str, Any] | None:
        body: dict[str, Any] = http.get(f"/api/v1/projects/{project_id}/executions/{execution_id}",
                                        headers=auth).json()
        return body if body["status"] in ("succeeded", "failed") else None

    found: dict[str, Any] = wait_for(done, timeout=60)
    return found


def test_an_instance_runs_its_pinned_prompt_version_with_its_variables_and_the_runs_merged_over_them(
    http: httpx.Client, worker: Any, loopback: Any,
) -> None:
    model = loop_model(loopback)
    project_id, auth = project(http)
    agent_id, prompt_id = greeter(http)
    pinned = instance(http, project_id, auth, name="Nord chat", agent_id=agent_id, system_prompt_version=1,
                      system_prompt_variables={"company": "Nord", "tone": "warm"},
                      custom_settings={"model": model, "personality": "patient", "timeout": 30})
    assert pinned["kind"] == "chat_draft" and pinned["template_id"] == agent_id
    answer = execute(http, project_id, auth, instance_id=pinned["instance_id"], input_data=CHAT,
                     variables={"tone": "brisk"})
    assert answer.status_code == 200, answer.text
    assert answer.json()["status"] == "succeeded" and answer.json()["instance_id"] == pinned["instance_id"]
    latest = instance(http, project_id, auth, name="Latest", template_id=agent_id,
                      system_prompt_variables={"company": "Süd", "tone": "calm"}, custom_settings={"model": model})
    through_jobs = http.post("/v1/jobs", headers=auth, json={"kind": "chat_draft", "payload": CHAT,
                                                             "instance_id": latest["instance_id"]})
    assert through_jobs.status_code == 202, through_jobs.text
    assert finished(http, project_id, auth, through_jobs.json()["job_id"])["status"] == "succeeded"
    prompts = [r["messages"][0]["content"] for r in loopback.requests(model=model)]
    assert "V1 Greeter of Nord, brisk." in prompts, prompts
    assert "V2 Greeter of Süd, calm." in prompts, prompts
    # a new version that needs a variable the instance following the latest lacks: refused at submit, naming it
    http.put(f"{MASTER}/system-prompts/{prompt_id}", headers=ADMIN, json={"template": "V3 {{ company }} in {{ city }}"})
    job = {"kind": "chat_draft", "payload": CHAT, "instance_id": latest["instance_id"]}
    refused = http.post("/v1/jobs", headers=auth, json=job)
    assert refused.status_code == 422 and refused.json()["error"]["variables"] == ["city"], refused.text
    assert http.post("/v1/jobs", headers=auth, json={**job, "variables": {"city": "Kiel"}}).status_code == 202
    still = execute(http, project_id, auth, instance_id=pinned["instance_id"], input_data=CHAT, async_execution=True)
    assert still.status_code == 202, "the pinned instance keeps rendering version 1"


def test_an_instance_is_refused_with_422_naming_what_is_missing_and_nothing_is_written(
    http: httpx.Client, services: Any,
) -> None:
    from tenancy.mongo import tenant_db

    project_id, auth = project(http)
    agent_id, _ = greeter(http)
    path = f"/api/v1/projects/{project_id}/agent-instances"
    missing = http.post(path, headers=auth, json={"name": "x", "agent_id": agent_id,
                                                  "system_prompt_variables": {"company": "Nord"}})
    assert missing.status_code == 422
    error = missing.json()["error"]
    assert error["code"] == "prompt_variable_missing" and error["variables"] == ["tone"]
    assert "tone" in error["message"]
    cases = [({"agent_id": "no-such-template"}, "no-such-template", "car-dealer"),
             ({"agent_id": agent_id, "system_prompt_version": 7}, "no version 7", "versions 1, 2"),
             ({"agent_id": agent_id, "custom_settings": {"model": "no-such-config"}}, "no-such-config", "offline"),
             ({"agent_id": agent_id, "custom_settings": {"mcp_servers": ["nowhere"]}}, "nowhere", None),
             ({"agent_id": "default"}, "name the instance's kind", "email_reply")]
    for spec, said, named in cases:
        answer = http.post(path, headers=auth, json={"name": "x", "system_prompt_variables": {
            "company": "Nord", "tone": "warm"}, **spec})
        assert answer.status_code == 422, (spec, answer.text)
        assert said in answer.json()["error"]["message"], answer.json()
        if named:
            assert named in answer.json()["error"]["message"], answer.json()
    reserved = http.post(path, headers=auth, json={"name": "x", "agent_id": agent_id,
                                                   "system_prompt_variables": {"tenant": "me", "tone": "t"}})
    assert reserved.status_code == 422 and "reserved" in reserved.text
    assert http.get(path, headers=auth).json()["items"] == []
    assert tenant_db(project_id).audit_log.count_documents({"entity": "agent_instance"}) == 0


def test_a_sync_execution_answers_the_finished_job_and_both_views_show_the_same_job(
    http: httpx.Client, worker: Any, loopback: Any,
) -> None:
    model = loop_model(loopback)
    project_id, auth = project(http)
    agent = instance(http, project_id, auth, name="Mail", template_id="car-dealer", kind="email_reply",
                     custom_settings={"model": model})
    answer = execute(http, project_id, auth, instance_id=agent["instance_id"], input_data=EMAIL)
    assert answer.status_code == 200, answer.text
    execution = answer.json()
    assert execution["status"] == "succeeded" and execution["result"]["subject"] == "Re: Price"
    assert execution["input_data"]["message_id"] == "<o1@example.com>"
    job = http.get(f"/v1/jobs/{execution['execution_id']}", headers=auth).json()
    as_execution = http.get(f"/api/v1/projects/{project_id}/executions/{execution['execution_id']}",
                            headers=auth).json()
    for view in (job, as_execution):
        for field in ("status", "result", "usage", "enqueued_at", "started_at", "finished_at", "instance_id",
                      "kind", "attempts"):
            assert view[field] == execution[field], field
    assert job["job_id"] == execution["execution_id"] and job["tenant_id"] == project_id
    result = http.get(f"/api/v1/projects/{project_id}/executions/{execution['execution_id']}/result", headers=auth)
    assert result.status_code == 200 and result.json()["result"] == execution["result"]
    from tenancy.mongo import tenant_db

    [usage] = tenant_db(project_id).token_usage.find({"job_id": execution["execution_id"]})
    assert usage["instance_id"] == agent["instance_id"]


def test_an_async_execution_answers_202_and_a_sync_one_past_its_instances_timeout_answers_202_with_its_id(
    http: httpx.Client, worker: Any, loopback: Any,
) -> None:
    model = loop_model(loopback, delay_s=2.5)
    project_id, auth = project(http)
    agent = instance(http, project_id, auth, name="Slow", template_id="default", kind="chat_draft",
                     custom_settings={"model": model, "timeout": 1})
    started = time.monotonic()
    sync = execute(http, project_id, auth, instance_id=agent["instance_id"], input_data=CHAT)
    assert sync.status_code == 202, sync.text
    # the job cannot end before its deadline (TENANTQ_JOB_DEADLINE_S, 5 s in tests): the answer came at the timeout
    assert 0.9 <= time.monotonic() - started < 4, "it waits the instance's timeout, not the job's run"
    assert sync.json()["status"] in ("queued", "running")
    queued = execute(http, project_id, auth, instance_id=agent["instance_id"], input_data=CHAT,
                     async_execution=True)
    assert queued.status_code == 202
    body = queued.json()
    assert body["status"] == "queued", "an async run answers at once, before a worker takes it"
    assert body["status_url"] == f"/api/v1/projects/{project_id}/executions/{body['execution_id']}"
    assert queued.headers["location"] == body["status_url"]
    pending = http.get(body["result_url"], headers=auth)
    assert pending.status_code == 202 and pending.json()["result"] is None
    # the instance's timeout (1 s) also caps each model call: the 2.5 s answer is never waited for
    for execution_id in (sync.json()["execution_id"], body["execution_id"]):
        ended = finished(http, project_id, auth, execution_id)
        assert ended["status"] == "failed" and ended["error"]["code"] in ("provider_timeout", "provider_unavailable")


def test_executions_are_listed_newest_first_page_by_page_and_filtered(
    http: httpx.Client, worker: Any, loopback: Any,
) -> None:
    model = loop_model(loopback)
    project_id, auth = project(http)
    first = instance(http, project_id, auth, name="A", template_id="default", kind="chat_draft",
                     custom_settings={"model": model})
    second = instance(http, project_id, auth, name="B", template_id="default", kind="chat_draft",
                      custom_settings={"model": model})
    ids = []
    for n in range(5):
        which = first if n % 2 == 0 else second
        answer = execute(http, project_id, auth, instance_id=which["instance_id"], input_data=CHAT,
                         async_execution=True)
        ids.append(answer.json()["execution_id"])
    for execution_id in ids:
        finished(http, project_id, auth, execution_id)
    path = f"/api/v1/projects/{project_id}/executions"
    seen: list[dict[str, Any]] = []
    cursor = None
    while True:
        page = http.get(path, headers=auth, params={"limit": 2, **({"cursor": cursor} if cursor else {})}).json()
        assert len(page["items"]) <= 2
        seen += page["items"]
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert [e["execution_id"] for e in seen] == list(reversed(ids)), "newest first, each once"
    stamps = [e["enqueued_at"] for e in seen]
    assert stamps == sorted(stamps, reverse=True)
    by_instance = http.get(path, headers=auth, params={"instance_id": second["instance_id"]}).json()["items"]
    assert [e["execution_id"] for e in by_instance] == [ids[3], ids[1]]
    assert len(http.get(path, headers=auth, params={"status": "succeeded"}).json()["items"]) == 5
    assert http.get(path, headers=auth, params={"status": "failed"}).json()["items"] == []
    window = {"from": seen[3]["enqueued_at"], "to": seen[1]["enqueued_at"]}
    assert [e["execution_id"] for e in http.get(path, headers=auth, params=window).json()["items"]] == [
        ids[2], ids[1]]
    for bad in ({"limit": 0}, {"limit": 201}, {"cursor": "not-a-cursor"}, {"status": "sleeping"}):
        assert http.get(path, headers=auth, params=bad).status_code == 422, bad
    instances = http.get(f"/api/v1/projects/{project_id}/agent-instances", headers=auth, params={"limit": 1}).json()
    assert len(instances["items"]) == 1 and instances["next_cursor"]


def test_a_project_created_with_nothing_but_an_id_runs_every_kind_out_of_the_box(
    http: httpx.Client, worker: Any,
) -> None:
    assert http.post(f"{MASTER}/setup/erp-defaults", headers=ADMIN).status_code == 200  # as `tenantq up` does
    project_id, auth = project(http)
    job_ids = {}
    for kind, payload in (("email_reply", EMAIL), ("chat_draft", CHAT), ("erp_analysis", ERP)):
        answer = http.post("/v1/jobs", headers=auth, json={"kind": kind, "payload": payload})
        assert answer.status_code == 202, answer.text
        job_ids[kind] = answer.json()["job_id"]
    for kind, job_id in job_ids.items():
        job = wait_for(lambda job_id=job_id: _ended(http, auth, job_id), timeout=90)
        assert job["status"] == "succeeded", (kind, job["error"])
        assert job["instance_id"] == f"default-{kind}"
    report = http.get(f"/v1/jobs/{job_ids['erp_analysis']}", headers=auth).json()["result"]
    assert report["coverage"]["server"] == "erp" and report["categories"][0]["findings"]
    defaults = http.get(f"/api/v1/projects/{project_id}/agent-instances", headers=auth).json()["items"]
    assert {(i["default_for"], i["template_id"]) for i in defaults} == {
        ("chat_draft", "default"), ("email_reply", "default"), ("erp_analysis", "erp-analyst")}
    path = f"/api/v1/projects/{project_id}/agent-instances/default-chat_draft"
    tuned = http.put(path, headers=auth, json={"name": "Chat", "template_id": "default",
                                               "custom_settings": {"temperature": 0.1}})
    assert tuned.status_code == 200 and tuned.json()["kind"] == "chat_draft", "a PUT without kind keeps it"
    moved = http.put(path, headers=auth, json={"name": "Chat", "template_id": "default", "kind": "email_reply"})
    assert moved.status_code == 422 and "default for chat_draft" in moved.json()["error"]["message"]


def _ended(http: httpx.Client, auth: dict[str, str], job_id: str) -> dict[str, Any] | None:
    job: dict[str, Any] = http.get(f"/v1/jobs/{job_id}", headers=auth).json()
    return job if job["status"] in ("succeeded", "failed") else None


def test_an_execution_with_invalid_input_or_an_unknown_instance_is_refused_and_nothing_is_enqueued(
    http: httpx.Client, services: Any,
) -> None:
    from tenancy.mongo import tenant_db

    project_id, auth = project(http)
    invalid = execute(http, project_id, auth, kind="email_reply", input_data={**EMAIL, "from": "nobody"})
    assert invalid.status_code == 422
    assert ["email_reply", "input_data", "from"] in [f["loc"] for f in invalid.json()["error"]["fields"]]
    unknown = execute(http, project_id, auth, instance_id="no-such-instance", input_data=CHAT)
    assert unknown.status_code == 422 and unknown.json()["error"]["code"] == "unknown_reference"
    no_kind = execute(http, project_id, auth, input_data=CHAT)
    assert no_kind.status_code == 422 and "kind" in no_kind.json()["error"]["message"]
    wrong_kind = instance(http, project_id, auth, name="Mail", template_id="default", kind="email_reply")
    mismatch = execute(http, project_id, auth, instance_id=wrong_kind["instance_id"], kind="chat_draft",
                       input_data=CHAT)
    assert mismatch.status_code == 422 and "runs email_reply jobs" in mismatch.text
    assert tenant_db(project_id).executions.count_documents({}) == 0


def test_another_projects_key_gets_404_on_every_project_route_and_no_key_gets_401(
    http: httpx.Client, worker: Any, loopback: Any,
) -> None:
    model = loop_model(loopback)
    project_id, auth = project(http)
    other_id, other = project(http)
    agent = instance(http, project_id, auth, name="Mine", template_id="default", kind="chat_draft",
                     custom_settings={"model": model})
    execution = execute(http, project_id, auth, instance_id=agent["instance_id"], input_data=CHAT).json()
    base = f"/api/v1/projects/{project_id}"
    routes = [("GET", f"{base}/agent-instances", None), ("POST", f"{base}/agent-instances",
                                                         {"name": "x", "template_id": "default", "kind": "chat_draft"}),
              ("GET", f"{base}/agent-instances/{agent['instance_id']}", None),
              ("PUT", f"{base}/agent-instances/{agent['instance_id']}", {"name": "x", "template_id": "default"}),
              ("GET", f"{base}/executions", None), ("POST", f"{base}/executions", {"kind": "chat_draft",
                                                                                 "input_data": CHAT}),
              ("GET", f"{base}/executions/{execution['execution_id']}", None),
              ("GET", f"{base}/executions/{execution['execution_id']}/result", None)]
    for method, path, body in routes:
        answer = http.request(method, path, headers=other, json=body)
        assert answer.status_code == 404, (method, path, answer.text)
        assert answer.json()["error"]["code"] == "not_found" and agent["instance_id"] not in answer.text
        assert http.request(method, path, json=body).status_code == 401, (method, path)
    assert http.get(f"/v1/jobs/{execution['execution_id']}", headers=other).status_code == 404
    # an instance of one project cannot be run by another, even by naming it in its own path
    borrowed = execute(http, other_id, other, instance_id=agent["instance_id"], input_data=CHAT)
    assert borrowed.status_code == 422 and "no agent instance" in borrowed.text.lower()
    # the admin token reaches every project
    assert http.get(f"{base}/executions/{execution['execution_id']}", headers=ADMIN).status_code == 200
    assert http.get(f"/api/v1/projects/{new_id('none')}/executions", headers=ADMIN).status_code == 404
    from tenancy.mongo import tenant_db

    assert tenant_db(project_id).agent_instances.count_documents({"name": "x"}) == 0
    assert tenant_db(other_id).executions.count_documents({}) == 0


def test_instance_changes_are_audited_in_the_master_and_the_projects_audit_log(
    http: httpx.Client, services: Any,
) -> None:
    from tenancy.mongo import master_db, tenant_db

    project_id, auth = project(http)
    agent = instance(http, project_id, auth, name="First", template_id="default", kind="chat_draft",
                     created_by="jane")
    path = f"/api/v1/projects/{project_id}/agent-instances/{agent['instance_id']}"
    changed = http.put(path, headers=ADMIN, json={"name": "Second", "template_id": "default", "kind": "chat_draft",
                                                  "custom_settings": {"temperature": 0.9}})
    assert changed.status_code == 200, changed.text
    assert changed.json()["created_at"] == agent["created_at"] and changed.json()["updated_at"] > agent["updated_at"]
    assert http.get(path, headers=auth).json()["custom_settings"]["temperature"] == 0.9
    for db in (master_db(), tenant_db(project_id)):
        entries = list(db.audit_log.find({"entity": "agent_instance", "entity_id": agent["instance_id"]}).sort("at", 1))
        assert [(e["action"], e["actor"]) for e in entries] == [("created", f"project:{project_id}"),
                                                                ("updated", "admin")]
        assert entries[1]["before"]["name"] == "First" and entries[1]["after"]["name"] == "Second"
        assert set(entries[0]) >= {"at", "actor", "action", "entity", "entity_id", "before", "after"}
