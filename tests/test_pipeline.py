"""Jobs through the whole fleet: ingress -> tenant queue -> admission -> a real Celery worker -> the model
(the loopback server) -> the tenant's database. Retries, fallbacks and broken messages included."""

from __future__ import annotations

import importlib.util
import uuid
from typing import Any

import pytest

from core.errors import InvalidJob
from schemas.agents import AgentSettings, ModelConfig
from tests.conftest import wait_for

EMAIL = {
    "from": "jane.doe@example.com", "to": "sales@dealer.example", "subject": "Test drive",
    "body": "Hello, can I test drive the new estate on Saturday?", "message_id": "<p1@example.com>",
    "lead_id": "lead-1",
}
CHAT = {"message": "Is the red one still available?", "conversation_id": "conv-1", "lead_id": "lead-2"}
ERP = {"prompt": "Which supplier invoices do not match their purchase orders?", "quick": True,
       "categories": ["invoice_matching"]}
ERP_HANDLER = "tasks.erp_analysis.handler"


def bearer(key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}


def route(loopback: Any, name: str, model: str) -> str:
    """Register a model route to the loopback server; the worker reads it from the master database."""
    from tenancy.registry import register_model

    register_model(ModelConfig(name=name, model=f"openai/{model}", api_base=loopback.api_base,
                               api_key_env="LOOPBACK_API_KEY"))
    return name


@pytest.fixture
def loop_routes(loopback: Any, services: dict[str, str]) -> tuple[str, str]:
    return route(loopback, "loop-a", "gpt-4o-mini"), route(loopback, "loop-b", "gpt-4o")


def submit(api: Any, key: str, kind: str, payload: dict[str, Any], **extra: Any) -> str:
    answer = api.post("/v1/jobs", json={"kind": kind, "payload": payload, **extra}, headers=bearer(key))
    assert answer.status_code == 202, answer.text
    job_id: str = answer.json()["job_id"]
    return job_id


def finished(api: Any, key: str, job_id: str, timeout: float = 30) -> dict[str, Any]:
    def done() -> dict[str, Any] | None:
        body: dict[str, Any] = api.get(f"/v1/jobs/{job_id}", headers=bearer(key)).json()
        return body if body["status"] in ("succeeded", "failed", "cancelled") else None

    job: dict[str, Any] = wait_for(done, timeout)
    return job


def audit(tenant_id: str, job_id: str, event: str) -> list[dict[str, Any]]:
    from tenancy.mongo import tenant_db

    return [doc["data"] for doc in tenant_db(tenant_id).audit_log.find({"job_id": job_id, "event": event})]


def test_email_replies_and_chat_drafts_of_two_tenants_are_answered_in_their_own_voice(
    api: Any, worker: Any, make_tenant: Any, loopback: Any, loop_routes: tuple[str, str]
) -> None:
    primary, fallback = loop_routes
    agent = AgentSettings(model=primary, fallbacks=[fallback])
    tenants = [make_tenant("dealer", template_id="car-dealer", agent=agent),
               make_tenant("shop", template_id="default", agent=agent.model_copy(update={"name": "Mia"}))]
    submitted = {(tenant_id, key, kind, submit(api, key, kind, payload))
                 for tenant_id, key in tenants for kind, payload in (("email_reply", EMAIL), ("chat_draft", CHAT))}
    for tenant_id, key, kind, job_id in submitted:
        job = finished(api, key, job_id)
        assert job["status"] == "succeeded", job["error"]
        assert job["tenant_id"] == tenant_id
        assert job["usage"]["total_tokens"] > 0 and job["usage"]["attempts"] == 1
        assert job["result"]["model"] == "openai/gpt-4o-mini"
        assert job["result"]["offline"] is False
        if kind == "email_reply":
            assert job["result"]["subject"] == "Re: Test drive"
            assert job["result"]["in_reply_to"] == EMAIL["message_id"]
            assert "test drive the new estate" in job["result"]["body"]
        else:
            assert job["result"]["reply"]
            assert isinstance(job["result"]["quick_replies"], list)
            assert job["result"]["conversation_id"] == "conv-1"
    system_prompts = [r["messages"][0]["content"] for r in loopback.requests(model="gpt-4o-mini")]
    assert any("Sales Assistant" in p and "offer a test drive" in p for p in system_prompts)
    assert any("You are Mia" in p for p in system_prompts)


def module_missing(name: str) -> bool:
    try:
        return importlib.util.find_spec(name) is None
    except ModuleNotFoundError:
        return True


@pytest.mark.skipif(module_missing(ERP_HANDLER),
                    reason=f"erp_analysis is not built yet: module {ERP_HANDLER} is missing")
def test_an_erp_analysis_report_is_written_into_its_tenants_database(
    api: Any, worker: Any, make_tenant: Any, loop_routes: tuple[str, str]
) -> None:
    from mcp_clients.registry import bundled_erp_server, register_server
    from tenancy.mongo import master_db, tenant_db

    register_server(master_db(), bundled_erp_server("erp-e2e", records=2_000, seed=5))
    primary, fallback = loop_routes
    tenant_id, key = make_tenant("erp", template_id="erp-analyst", agent=AgentSettings(
        model=primary, fallbacks=[fallback], mcp_servers=["erp-e2e"]))
    job_id = submit(api, key, "erp_analysis", ERP)
    job = finished(api, key, job_id, timeout=90)
    assert job["status"] == "succeeded", job["error"]
    assert job["tenant_id"] == tenant_id
    report = job["result"]
    assert report["mode"] == "quick"
    assert [c["category"] for c in report["categories"]] == ["invoice_matching"]
    assert report["categories"][0]["findings"], "the bundled ERP plants invoice mismatches"
    assert report["narrative"]["summary"]
    assert tenant_db(tenant_id).results.count_documents({"job_id": job_id}) == 1
    assert audit(tenant_id, job_id, "model_call")


def test_a_job_answered_after_a_429_and_a_500_succeeds_and_counts_three_attempts(
    api: Any, worker: Any, make_tenant: Any, loopback: Any
) -> None:
    model = f"flaky-{uuid.uuid4().hex[:8]}"
    loopback.control(model=model, fail_first=[429, 500])
    tenant_id, key = make_tenant("retry", agent=AgentSettings(model=route(loopback, model, model)))
    job_id = submit(api, key, "email_reply", EMAIL)
    job = finished(api, key, job_id)
    assert job["status"] == "succeeded", job["error"]
    assert job["usage"]["attempts"] == 3
    assert job["attempts"] == 1, "retries happen inside the model call, not as a second delivery"
    [call] = audit(tenant_id, job_id, "model_call")
    assert call["attempts"] == 3 and call["fallback_used"] is False
    assert len(loopback.requests(model=model)) == 3


def test_the_fallback_model_answers_when_the_primary_always_fails(
    api: Any, worker: Any, make_tenant: Any, loopback: Any
) -> None:
    primary, fallback = f"down-{uuid.uuid4().hex[:8]}", f"spare-{uuid.uuid4().hex[:8]}"
    loopback.control(model=primary, always_fail_status=500)
    agent = AgentSettings(model=route(loopback, primary, primary), fallbacks=[route(loopback, fallback, fallback)])
    tenant_id, key = make_tenant("fallback", agent=agent)
    job_id = submit(api, key, "chat_draft", CHAT)
    job = finished(api, key, job_id)
    assert job["status"] == "succeeded", job["error"]
    assert job["result"]["model"] == f"openai/{fallback}"
    assert job["usage"]["model"] == f"openai/{fallback}"
    [call] = audit(tenant_id, job_id, "model_call")
    assert call["model"] == f"openai/{fallback}" and call["fallback_used"] is True
    primary_calls = len(loopback.requests(model=primary))
    assert primary_calls >= 2, "the primary is retried before the fallback is used"
    assert call["attempts"] == primary_calls + 1


def test_a_job_fails_with_a_readable_error_when_every_model_fails(
    api: Any, worker: Any, make_tenant: Any, loopback: Any
) -> None:
    model = f"dead-{uuid.uuid4().hex[:8]}"
    loopback.control(model=model, always_fail_status=503)
    _, key = make_tenant("dead", agent=AgentSettings(model=route(loopback, model, model)))
    job = finished(api, key, submit(api, key, "email_reply", EMAIL))
    assert job["status"] == "failed"
    assert job["error"]["code"] == "provider_unavailable"
    assert "fallback model" in job["error"]["message"]
    assert job["usage"] is None or job["usage"]["total_tokens"] == 0


def test_a_malformed_worker_message_fails_its_job_readably_and_the_worker_keeps_serving(
    api: Any, worker: Any, make_tenant: Any, loop_routes: tuple[str, str]
) -> None:
    from schemas.jobs import JobEnvelope, JobKind, PriorityClass
    from tenancy import jobs
    from tenancy.queues import get_queues
    from workers.app import app

    tenant_id, key = make_tenant("broken", agent=AgentSettings(model=loop_routes[0]))
    envelope = JobEnvelope(job_id=uuid.uuid4().hex, tenant_id=tenant_id, kind=JobKind.email_reply,
                           priority=PriorityClass.standard, payload=EMAIL, enqueued_at=jobs.now())
    assert jobs.create(envelope, None) is None
    secret, address = "sk-malformed-secret-123456", "lead.person@example.com"
    app.send_task("tenantq.run_job", args=["not a job at all", 1], queue="tenantq.standard")
    app.send_task("tenantq.run_job", queue="tenantq.standard", args=[
        {"job_id": envelope.job_id, "tenant_id": tenant_id, "kind": "summon_demons", "api_key": secret,
         "payload": f"write to {address}"}, 1])
    broken = finished(api, key, envelope.job_id)
    assert broken["status"] == "failed"
    assert broken["error"]["code"] == "invalid_job"
    assert "malformed job message" in broken["error"]["message"]
    assert "kind" in broken["error"]["message"] and "payload" in broken["error"]["message"]
    assert address not in str(broken["error"]) and "summon_demons" not in str(broken["error"])
    [dead] = [d for d in get_queues().dead_letters(10_000) if envelope.job_id in d["message"]]
    assert "summon_demons" in dead["message"], "the dead letter keeps the message for reprocessing"
    assert secret not in str(dead) and address not in str(dead)
    follow_up = finished(api, key, submit(api, key, "email_reply", EMAIL))
    assert follow_up["status"] == "succeeded", follow_up
    assert worker.alive()


def test_outcomes_of_jobs_ending_at_once_all_land_whole_in_their_tenants_database(make_tenant: Any) -> None:
    from concurrent.futures import ThreadPoolExecutor

    from schemas.jobs import JobEnvelope, JobKind, JobOutcome, JobStatus, PriorityClass
    from schemas.usage import Usage
    from tenancy import jobs
    from tenancy.mongo import tenant_db

    tenant_id, _ = make_tenant("burst")
    envelopes = [JobEnvelope(job_id=uuid.uuid4().hex, tenant_id=tenant_id, kind=JobKind.email_reply,
                             priority=PriorityClass.standard, payload=EMAIL, enqueued_at=jobs.now())
                 for _ in range(60)]
    for envelope in envelopes:
        assert jobs.create(envelope, None) is None and jobs.start(tenant_id, envelope.job_id, 1) is None

    def end(index: int) -> None:
        job_id = envelopes[index].job_id
        usage = [Usage(total_tokens=index + 1, model="m", provider="openai")]
        if index % 3:
            trail = jobs.Trail()
            trail.add("model_call", total_tokens=index + 1)
            outcome = JobOutcome(status=JobStatus.succeeded, attempt=1, result={"body": f"reply {index}"},
                                 usage=usage, events=trail.events)
        else:
            error = InvalidJob(f"job {index} is invalid").to_dict()
            outcome = JobOutcome(status=JobStatus.failed, attempt=1, error=error, usage=usage)
        jobs.record(tenant_id, job_id, "email_reply", outcome)

    with ThreadPoolExecutor(30) as pool:
        list(pool.map(end, range(len(envelopes))))

    db = tenant_db(tenant_id)
    for index, envelope in enumerate(envelopes):
        view = jobs.view(tenant_id, envelope.job_id)
        assert view.usage is not None and view.usage.total_tokens == index + 1
        events = [a["event"] for a in db.audit_log.find({"job_id": envelope.job_id}).sort("at", 1)]
        if index % 3:
            assert view.status == "succeeded" and view.result == {"body": f"reply {index}"}
            assert events == ["queued", "started", "model_call", "succeeded"]
        else:
            assert view.status == "failed" and view.error is not None and f"job {index}" in view.error["message"]
            assert events == ["queued", "started", "failed"]
        assert db.token_usage.count_documents({"job_id": envelope.job_id}) == 1


def test_a_grouped_write_that_fails_stops_only_its_own_caller(make_tenant: Any) -> None:
    from concurrent.futures import ThreadPoolExecutor

    from pymongo.errors import WriteError

    from tenancy.mongo import Write, tenant_db, write_grouped

    db = tenant_db(make_tenant("group")[0])
    db.audit_log.insert_one({"_id": "taken"})

    def write(index: int) -> str:
        key = "taken" if index == 7 else f"doc-{index}"
        try:
            write_grouped(db, [Write("audit_log", "insert", {"_id": key, "n": index}),
                               Write("results", "insert", {"job_id": f"job-{index}"})])
        except WriteError as error:
            return f"{index}: {error.code}"
        return "ok"

    with ThreadPoolExecutor(20) as pool:
        answers = list(pool.map(write, range(40)))

    assert answers[7] == "7: 11000" and answers.count("ok") == 39  # a duplicate key, for caller 7 alone
    assert db.results.count_documents({}) == 39 and db.results.count_documents({"job_id": "job-7"}) == 0
    assert db.audit_log.count_documents({"n": {"$exists": True}}) == 39
