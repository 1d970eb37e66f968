"""The project's read-side views over real HTTP (a uvicorn ingress) on jobs run by a real worker: token usage,
the dashboard and the audit log, each figure checked against the project's own documents, and each view
closed to every other project."""

from __future__ import annotations

import math
import uuid
from collections import defaultdict
from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta
from typing import Any

import httpx
import pytest

from schemas.agents import AgentSettings, ModelConfig
from schemas.tenants import Plan
from tenantq.localfleet import LocalFleet
from tests.conftest import wait_for
from tests.real_ingress import running_ingress

pytestmark = pytest.mark.timeout(120)
ADMIN = {"Authorization": "Bearer test-admin-token"}
CHAT = {"message": "Is the estate still there?", "conversation_id": "views-1", "lead_id": "lead-views"}
FIGURES = ("prompt_tokens", "completion_tokens", "total_tokens", "cost_usd")
http = httpx.Client(timeout=60)
"""A client with room for the ingress's first estimate, which imports LiteLLM (seconds on a busy machine)."""


@pytest.fixture(scope="module")
def ingress(fleet: LocalFleet, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    with running_ingress(fleet.env, str(tmp_path_factory.mktemp("ingress") / "ingress.log")) as url:
        yield url
    http.close()


def bearer(key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}


def project(make_tenant: Any, loopback: Any, *, fail_first: list[int] | None = None,
            plan: Plan | None = None) -> tuple[str, str]:
    """A project whose agent answers through its own loopback model (so failures can be asked of it)."""
    from tenancy.registry import register_model

    model = f"views-{uuid.uuid4().hex[:8]}"
    loopback.control(model=model, fail_first=fail_first or [])
    register_model(ModelConfig(name=model, model=f"openai/{model}", api_base=loopback.api_base,
                               api_key_env="LOOPBACK_API_KEY", input_cost_per_token=1e-6,
                               output_cost_per_token=2e-6))
    return make_tenant("views", agent=AgentSettings(model=model), plan=plan or Plan())


def run_jobs(url: str, key: str, count: int) -> list[dict[str, Any]]:
    """Submit `count` chat drafts and wait until each has ended."""
    ids = []
    for _ in range(count):
        answer = http.post(f"{url}/v1/jobs", json={"kind": "chat_draft", "payload": CHAT}, headers=bearer(key))
        assert answer.status_code == 202, answer.text
        ids.append(answer.json()["job_id"])

    def ended(job_id: str) -> dict[str, Any] | None:
        job: dict[str, Any] = http.get(f"{url}/v1/jobs/{job_id}", headers=bearer(key)).json()
        return job if job["status"] in ("succeeded", "failed") else None

    return [wait_for(lambda job_id=job_id: ended(job_id), timeout=60) for job_id in ids]


def seed_usage(project_id: str, docs: list[dict[str, Any]]) -> None:
    """Usage records as the worker writes them, with the instance_id the agent-instance work adds to them."""
    from tenancy.mongo import tenant_db

    tenant_db(project_id).token_usage.insert_many([
        {"_id": f"seed-{uuid.uuid4().hex}:0", "job_id": uuid.uuid4().hex, "kind": "chat_draft", "provider": "openai",
         "attempt": 1, **doc} for doc in docs])


def usage_doc(at: datetime, n: int, instance: str | None, model: str) -> dict[str, Any]:
    doc: dict[str, Any] = {"created_at": at, "model": model, "prompt_tokens": 100 + n, "completion_tokens": 10 * n,
                           "total_tokens": 100 + 11 * n, "cost_usd": 0.0001 * (n + 1)}
    if instance is not None:
        doc["instance_id"] = instance
    return doc


def expected_usage(project_id: str, since: datetime, until: datetime, key: Any) -> dict[str, dict[str, float]]:
    """The figures of the documents themselves, grouped in Python."""
    from tenancy.jobs import as_utc
    from tenancy.mongo import tenant_db

    groups: dict[str, dict[str, float]] = defaultdict(lambda: dict.fromkeys((*FIGURES, "count"), 0))
    for doc in tenant_db(project_id).token_usage.find():
        at = as_utc(doc["created_at"])
        assert at is not None
        if since <= at < until:
            group = groups[key(doc, at)]
            for name in FIGURES:
                group[name] += doc.get(name, 0)
            group["count"] += 1
    return dict(groups)


def assert_figures(answer: dict[str, Any], expected: dict[str, float]) -> None:
    for name in ("prompt_tokens", "completion_tokens", "total_tokens", "count"):
        assert answer[name] == expected[name], (name, answer, expected)
    assert answer["cost_usd"] == pytest.approx(expected["cost_usd"], abs=1e-7)


def test_token_usage_per_instance_model_and_day_and_in_total_matches_the_usage_documents(
    ingress: str, worker: Any, make_tenant: Any, loopback: Any,
) -> None:
    project_id, key = project(make_tenant, loopback)
    other_id, _ = project(make_tenant, loopback)
    assert all(job["status"] == "succeeded" for job in run_jobs(ingress, key, 3))
    first = datetime(2025, 3, 1, tzinfo=UTC)
    instances, models = ["inst-a", "inst-b", None], ["openai/gpt-4o-mini", "anthropic/claude-3-5-haiku"]
    docs = [usage_doc(first + timedelta(hours=9 * n), n, instances[n % 3], models[n % 2]) for n in range(14)]
    docs += [usage_doc(first - timedelta(milliseconds=1), 50, "inst-a", models[0]),  # the day before the range
             usage_doc(first + timedelta(days=5), 60, "inst-b", models[1])]  # the day after it
    seed_usage(project_id, docs)
    seed_usage(other_id, [usage_doc(first + timedelta(hours=1), 99, "inst-a", models[0])])
    since, until = first, first + timedelta(days=5)

    keys = {"instance": lambda d, at: d.get("instance_id", "none"), "model": lambda d, at: d["model"],
            "day": lambda d, at: at.date().isoformat()}
    for group_by, key_of in keys.items():
        answer = http.get(f"{ingress}/api/v1/projects/{project_id}/token-usage", headers=bearer(key), params={
            "start_date": "2025-03-01", "end_date": "2025-03-05", "group_by": group_by})
        assert answer.status_code == 200, answer.text
        report = answer.json()
        expected = expected_usage(project_id, since, until, key_of)
        assert {g["key"] for g in report["groups"]} == set(expected), group_by
        for group in report["groups"]:
            assert_figures(group, expected[group["key"]])
        total = expected_usage(project_id, since, until, lambda d, at: "all")["all"]
        assert_figures(report["total"], total)
        assert report["total"]["count"] == 14, "the documents outside the range (and the other project's) count not"
    days = [g["key"] for g in report["groups"]]
    assert days == sorted(days) == ["2025-03-01", "2025-03-02", "2025-03-03", "2025-03-04", "2025-03-05"]

    # By default: this month so far, where the worker's usage of the three jobs is, under the default instance
    # of their kind, which the first of them made.
    answer = http.get(f"{ingress}/api/v1/projects/{project_id}/token-usage", headers=ADMIN)
    assert answer.status_code == 200, answer.text
    now = datetime.now(UTC)
    month = now.replace(day=1, hour=0, minute=0, second=0, microsecond=0)
    expected = expected_usage(project_id, month, now + timedelta(days=1), lambda d, at: d.get("instance_id", "none"))
    [none] = answer.json()["groups"]
    assert none["key"] == "default-chat_draft" and none["count"] == 3 and none["cost_usd"] > 0
    assert_figures(none, expected["default-chat_draft"])


def nearest_rank(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[max(0, math.ceil(p / 100 * len(ordered)) - 1)]


def test_the_dashboard_shows_this_months_executions_durations_spend_top_instances_and_failures(
    ingress: str, worker: Any, make_tenant: Any, loopback: Any,
) -> None:
    from tenancy.jobs import as_utc
    from tenancy.mongo import tenant_db

    project_id, key = project(make_tenant, loopback, fail_first=[400, 400],
                              plan=Plan(monthly_budget_usd=2.0, monthly_token_budget=1_000_000))
    failed = run_jobs(ingress, key, 2)
    assert [job["status"] for job in failed] == ["failed", "failed"]
    succeeded = run_jobs(ingress, key, 5)
    assert {job["status"] for job in succeeded} == {"succeeded"}
    db = tenant_db(project_id)
    # The agent-instance work tags executions and usage with their instance; spread run times too.
    for n, job in enumerate(succeeded):
        instance = ["inst-a", "inst-b", "inst-c"][n % 3]
        finished = as_utc(db.executions.find_one({"_id": job["job_id"]})["finished_at"])
        assert finished is not None
        db.executions.update_one({"_id": job["job_id"]}, {"$set": {
            "instance_id": instance, "started_at": finished - timedelta(seconds=1.5 * (n + 1))}})
        db.token_usage.update_many({"job_id": job["job_id"]}, {"$set": {"instance_id": instance}})
    seed_usage(project_id, [usage_doc(datetime.now(UTC) - timedelta(seconds=5), 7, "inst-c", "openai/x")])
    last_month = datetime.now(UTC).replace(day=1) - timedelta(days=3)
    seed_usage(project_id, [usage_doc(last_month, 9, "inst-z", "openai/x")])

    answer = http.get(f"{ingress}/api/v1/projects/{project_id}/analytics/dashboard", headers=bearer(key))
    assert answer.status_code == 200, answer.text
    board = answer.json()
    month = datetime.fromisoformat(board["period"]["start"])
    assert month == datetime.now(UTC).replace(day=1, hour=0, minute=0, second=0, microsecond=0)

    executions = [d for d in db.executions.find() if as_utc(d["enqueued_at"]) >= month]
    assert board["executions"]["total"] == len(executions) == 7
    assert board["executions"]["by_status"]["succeeded"] == 5 and board["executions"]["by_status"]["failed"] == 2
    assert board["executions"]["success_rate"] == pytest.approx(5 / 7)

    runs = [(as_utc(d["finished_at"]) - as_utc(d["started_at"])).total_seconds()
            for d in executions if d.get("started_at") and d.get("finished_at")]
    assert board["duration"]["count"] == len(runs) == 7
    assert board["duration"]["p50_s"] == pytest.approx(nearest_rank(runs, 50), abs=1e-3)
    assert board["duration"]["p95_s"] == pytest.approx(nearest_rank(runs, 95), abs=1e-3)
    assert board["duration"]["p95_s"] >= 7.5

    spent = expected_usage(project_id, month, datetime.now(UTC) + timedelta(days=1), lambda d, at: "all")["all"]
    assert_figures(board["month"], spent)
    assert board["month"]["count"] == 6, "five calls of the worker and one seeded this month; last month's not"
    assert board["month"]["budget_usd"] == 2.0 and board["month"]["token_budget"] == 1_000_000
    assert board["month"]["budget_used"] == pytest.approx(spent["cost_usd"] / 2.0, rel=1e-4)
    assert board["month"]["token_budget_used"] == pytest.approx(spent["total_tokens"] / 1_000_000, rel=1e-4)

    by_instance = expected_usage(project_id, month, datetime.now(UTC) + timedelta(days=1),
                                 lambda d, at: d.get("instance_id", "none"))
    ranked = sorted(by_instance, key=lambda i: -by_instance[i]["cost_usd"])
    assert [i["instance_id"] for i in board["top_instances"]] == ranked
    assert "inst-z" not in ranked
    for entry in board["top_instances"]:
        assert entry["cost_usd"] == pytest.approx(by_instance[entry["instance_id"]]["cost_usd"], abs=1e-7)

    failures = board["last_failures"]
    ended = sorted(db.executions.find({"status": "failed"}), key=lambda d: (as_utc(d["finished_at"]), d["_id"]))
    assert [f["execution_id"] for f in failures] == [d["_id"] for d in reversed(ended)], "the last first"
    assert {f["execution_id"] for f in failures} == {job["job_id"] for job in failed}
    assert all(f["code"] == "provider_rejected" and f["message"] for f in failures)


def audit_docs(project_id: str) -> list[dict[str, Any]]:
    from tenancy.mongo import tenant_db

    return list(tenant_db(project_id).audit_log.find())


def all_pages(url: str, key: str, project_id: str, **params: Any) -> list[dict[str, Any]]:
    entries: list[dict[str, Any]] = []
    cursor = None
    for _ in range(100):
        answer = http.get(f"{url}/api/v1/projects/{project_id}/audit-log", headers=bearer(key),
                           params={**params, **({"cursor": cursor} if cursor else {})})
        assert answer.status_code == 200, answer.text
        page = answer.json()
        assert len(page["entries"]) <= params.get("limit", 50)
        entries += page["entries"]
        cursor = page["next_cursor"]
        if cursor is None:
            return entries
    raise AssertionError("the pages never ended")


def test_the_audit_log_pages_newest_first_through_job_events_and_instance_changes_with_filters(
    ingress: str, worker: Any, make_tenant: Any, loopback: Any,
) -> None:
    from tenancy.jobs import as_utc
    from tenancy.mongo import tenant_db

    project_id, key = project(make_tenant, loopback)
    run_jobs(ingress, key, 3)
    changes = tenant_db(project_id).audit_log
    base = datetime(2025, 4, 10, 8, tzinfo=UTC)
    for n in range(5):
        changes.insert_one({"at": base + timedelta(days=n), "actor": "admin", "action": "instance.updated",
                            "entity": "agent_instance", "entity_id": f"inst-{n}", "before": {"temperature": 0.3},
                            "after": {"temperature": 0.5 + n / 10}})
    changes.insert_one({"at": base + timedelta(days=1), "actor": "admin", "action": "instance.created",
                        "entity": "agent_instance", "entity_id": "inst-9", "before": None, "after": {"name": "x"}})

    docs = audit_docs(project_id)
    newest_first = sorted(docs, key=lambda d: (as_utc(d["at"]), str(d["_id"])), reverse=True)
    entries = all_pages(ingress, key, project_id, limit=4)
    assert len(entries) == len(docs) == 3 * 4 + 6 + 1, (
        "queued, started, model_call, succeeded per job; six changes; the default instance the first job made")
    assert [e["id"] for e in entries] == [str(d["_id"]) for d in newest_first]
    assert len({e["id"] for e in entries}) == len(entries), "no entry twice across pages"

    succeeded = all_pages(ingress, key, project_id, action="succeeded", limit=2)
    assert len(succeeded) == 3 and all(e["action"] == "succeeded" and e["job_id"] for e in succeeded)
    updated = all_pages(ingress, key, project_id, action="instance.updated", limit=200)
    assert [e["entity_id"] for e in updated] == [f"inst-{n}" for n in reversed(range(5))]
    assert updated[0]["after"] == {"temperature": 0.9} and updated[0]["actor"] == "admin"

    window = all_pages(ingress, key, project_id, start_date="2025-04-11", end_date="2025-04-12")
    assert sorted(e["entity_id"] for e in window) == ["inst-1", "inst-2", "inst-9"]
    assert all(date(2025, 4, 11) <= datetime.fromisoformat(e["at"]).date() <= date(2025, 4, 12) for e in window)


@pytest.mark.parametrize("view", ["token-usage", "analytics/dashboard", "audit-log"])
def test_each_view_is_closed_to_other_projects_keys_and_to_callers_without_credentials(
    ingress: str, make_tenant: Any, view: str,
) -> None:
    project_id, key = make_tenant("views")
    other_id, other_key = make_tenant("views")
    seed_usage(project_id, [usage_doc(datetime.now(UTC), 1, "inst-a", "openai/x")])
    url = f"{ingress}/api/v1/projects/{project_id}/{view}"
    assert http.get(url, headers=bearer(key)).status_code == 200
    assert http.get(url, headers=ADMIN).status_code == 200
    refused = http.get(url, headers=bearer(other_key))
    assert refused.status_code == 404 and refused.json()["error"]["code"] == "unknown_tenant"
    assert "inst-a" not in refused.text
    own_project_view = http.get(f"{ingress}/api/v1/projects/{other_id}/{view}", headers=bearer(other_key))
    assert own_project_view.status_code == 200 and "inst-a" not in own_project_view.text
    for headers in ({}, {"Authorization": "Bearer tq_never-issued"}, {"Authorization": "Bearer not-the-admin"}):
        answer = http.get(url, headers=headers)
        assert answer.status_code == 401 and answer.headers["www-authenticate"] == "Bearer"
    unknown = http.get(f"{ingress}/api/v1/projects/nobody-{uuid.uuid4().hex[:6]}/{view}", headers=ADMIN)
    assert unknown.status_code == 404 and "GET /v1/tenants" in unknown.json()["error"]["message"]
    invalid = http.get(f"{ingress}/api/v1/projects/Not_A_Project/{view}", headers=ADMIN)
    assert invalid.status_code == 422 and "a-z, 0-9" in invalid.json()["error"]["message"]


@pytest.mark.parametrize(("view", "params", "names"), [
    ("token-usage", {"group_by": "week"}, "'instance', 'model' or 'day'"),
    ("token-usage", {"start_date": "2025-03-05", "end_date": "2025-03-01"}, "after end_date"),
    ("token-usage", {"start_date": "2023-01-01", "end_date": "2025-01-01"}, "366 days"),
    ("token-usage", {"start_date": "yesterday"}, "valid date"),
    ("audit-log", {"limit": "0"}, "greater than or equal to 1"),
    ("audit-log", {"limit": "201"}, "less than or equal to 200"),
    ("audit-log", {"cursor": "not-a-cursor"}, "next_cursor"),
    ("audit-log", {"start_date": "2025-03-05", "end_date": "2025-03-01"}, "after end_date"),
], ids=["group-by", "inverted-range", "range-over-a-year", "not-a-date", "limit-0", "limit-201", "cursor",
        "audit-inverted-range"])
def test_bad_view_queries_are_refused_with_422_naming_what_is_valid_and_change_nothing(
    ingress: str, make_tenant: Any, view: str, params: dict[str, str], names: str,
) -> None:
    from tenancy.mongo import tenant_db

    project_id, key = make_tenant("views")
    before = {c: tenant_db(project_id)[c].count_documents({}) for c in ("executions", "token_usage", "audit_log")}
    answer = http.get(f"{ingress}/api/v1/projects/{project_id}/{view}", headers=bearer(key), params=params)
    assert answer.status_code == 422, answer.text
    assert names in answer.text
    assert {c: tenant_db(project_id)[c].count_documents({}) for c in before} == before
