"""A tenant's jobs, results, usage and audit trail live in its own database and nowhere else; its key
reaches only its own jobs; its idempotency keys are its own."""

from __future__ import annotations

from typing import Any

import pytest

from schemas.agents import AgentSettings, ModelConfig
from tests.conftest import wait_for

JOB_COLLECTIONS = ("executions", "results", "token_usage", "audit_log")
CHAT = {"message": "Can I bring my dog to the test drive?", "conversation_id": "conv-7", "lead_id": "lead-7"}


def bearer(key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}


@pytest.fixture
def loop_agent(loopback: Any, services: dict[str, str]) -> AgentSettings:
    from tenancy.registry import register_model

    register_model(ModelConfig(name="loop-a", model="openai/gpt-4o-mini", api_base=loopback.api_base,
                               api_key_env="LOOPBACK_API_KEY"))
    return AgentSettings(model="loop-a")


def submit(api: Any, key: str, **extra: Any) -> dict[str, Any]:
    answer = api.post("/v1/jobs", json={"kind": "chat_draft", "payload": CHAT, **extra}, headers=bearer(key))
    assert answer.status_code == 202, answer.text
    body: dict[str, Any] = answer.json()
    return body


def finished(api: Any, key: str, job_id: str) -> dict[str, Any]:
    def done() -> dict[str, Any] | None:
        body: dict[str, Any] = api.get(f"/v1/jobs/{job_id}", headers=bearer(key)).json()
        return body if body["status"] in ("succeeded", "failed") else None

    job: dict[str, Any] = wait_for(done, 30)
    return job


def databases_holding(job_id: str) -> dict[str, list[str]]:
    """Every database, master included, with the collections that mention the job."""
    from tenancy.mongo import client

    found: dict[str, list[str]] = {}
    for name in client().list_database_names():
        db = client()[name]
        present = set(db.list_collection_names())  # reading a missing collection may create it (nx-27017)
        hits = [c for c in JOB_COLLECTIONS if c in present
                and db[c].count_documents({"$or": [{"_id": job_id}, {"job_id": job_id}]}, limit=1)]
        if hits:
            found[name] = hits
    return found


def test_results_usage_and_audit_land_only_in_the_jobs_tenant_database(
    api: Any, worker: Any, make_tenant: Any, loop_agent: AgentSettings
) -> None:
    from tenancy.mongo import master_db, tenant_db

    (owner, owner_key), (other, other_key) = make_tenant("iso", agent=loop_agent), make_tenant("iso", agent=loop_agent)
    job_id = submit(api, owner_key)["job_id"]
    other_job = submit(api, other_key)["job_id"]
    assert finished(api, owner_key, job_id)["status"] == "succeeded"
    assert finished(api, other_key, other_job)["status"] == "succeeded"

    assert databases_holding(job_id) == {tenant_db(owner).name: list(JOB_COLLECTIONS)}
    assert databases_holding(other_job) == {tenant_db(other).name: list(JOB_COLLECTIONS)}
    own = tenant_db(owner)
    assert own.results.find_one({"job_id": job_id})["result"]["reply"]
    [usage] = own.token_usage.find({"job_id": job_id})
    assert usage["total_tokens"] > 0 and usage["model"] == "openai/gpt-4o-mini"
    events = [doc["event"] for doc in own.audit_log.find({"job_id": job_id}).sort("at", 1)]
    assert events == ["queued", "started", "model_call", "succeeded"]
    master = master_db()
    assert all(master[c].estimated_document_count() == 0
               for c in (set(JOB_COLLECTIONS) - {"audit_log"}) & set(master.list_collection_names()))
    # the master audit log holds changes of master data and agent instances, never a job's events
    assert master.audit_log.count_documents({"job_id": {"$exists": True}}) == 0


def test_a_tenant_key_cannot_read_another_tenants_job(
    api: Any, worker: Any, make_tenant: Any, loop_agent: AgentSettings
) -> None:
    (_, owner_key), (_, other_key) = make_tenant("iso", agent=loop_agent), make_tenant("iso", agent=loop_agent)
    job_id = submit(api, owner_key)["job_id"]
    assert finished(api, owner_key, job_id)["status"] == "succeeded"
    answer = api.get(f"/v1/jobs/{job_id}", headers=bearer(other_key))
    assert answer.status_code == 404
    assert answer.json()["error"]["code"] == "job_not_found"
    assert "result" not in answer.text


def test_the_same_idempotency_key_returns_the_first_job_and_runs_it_once(
    api: Any, worker: Any, make_tenant: Any, loopback: Any, loop_agent: AgentSettings
) -> None:
    from tenancy.mongo import tenant_db

    tenant_id, key = make_tenant("idem", agent=loop_agent)
    first = submit(api, key, idempotency_key="msg-42")
    again = submit(api, key, idempotency_key="msg-42")
    assert again["job_id"] == first["job_id"]
    assert (first["duplicate"], again["duplicate"]) == (False, True)
    assert finished(api, key, first["job_id"])["status"] == "succeeded"
    late = submit(api, key, idempotency_key="msg-42")
    assert late == {"job_id": first["job_id"], "status": "succeeded", "duplicate": True}
    db = tenant_db(tenant_id)
    assert db.executions.count_documents({}) == 1
    assert db.audit_log.count_documents({"event": "queued"}) == 1
    assert db.audit_log.count_documents({"event": "model_call"}) == 1


def test_the_same_idempotency_key_from_another_tenant_makes_a_separate_job(
    api: Any, worker: Any, make_tenant: Any, loop_agent: AgentSettings
) -> None:
    from tenancy.mongo import tenant_db

    (first, first_key), (second, second_key) = make_tenant("idem", agent=loop_agent), make_tenant(
        "idem", agent=loop_agent)
    mine = submit(api, first_key, idempotency_key="shared-key")
    theirs = submit(api, second_key, idempotency_key="shared-key")
    assert mine["job_id"] != theirs["job_id"]
    assert not mine["duplicate"] and not theirs["duplicate"]
    assert finished(api, first_key, mine["job_id"])["status"] == "succeeded"
    assert finished(api, second_key, theirs["job_id"])["status"] == "succeeded"
    assert tenant_db(first).executions.count_documents({}) == 1
    assert tenant_db(second).executions.count_documents({}) == 1
