"""A project's dashboard for this month: executions by status, success rate, run-time percentiles, spend
beside the plan's budget, the instances that cost most, and the last failures with their reasons.

Counts and sums are aggregations in the project's database. Percentiles are computed here over the run
times of the month's newest finished executions (at most DURATION_SAMPLE of them), as `$percentile` is
MongoDB 7 only and the embedded server lacks it; the sample bounds the work whatever the project's volume.
"""

from __future__ import annotations

import math
from datetime import datetime
from typing import Any

from pymongo import DESCENDING
from pymongo.command_cursor import CommandCursor

from schemas.jobs import JobStatus
from schemas.reports import (
    NO_GROUP,
    Dashboard,
    Durations,
    ExecutionCounts,
    Failure,
    InstanceCost,
    MonthSpend,
    Period,
)
from tenancy import usage_report
from tenancy.jobs import as_utc, now
from tenancy.mongo import tenant_db
from tenancy.periods import month_start, within
from tenancy.registry import get_tenant

DURATION_SAMPLE = 10_000
TOP_INSTANCES = 5
LAST_FAILURES = 10
ENDED = [JobStatus.succeeded.value, JobStatus.failed.value]


def dashboard(project_id: str, at: datetime | None = None) -> Dashboard:
    end = at or now()
    start = month_start(end)
    plan = get_tenant(project_id).plan
    spent = usage_report.totals(project_id, start, None)
    return Dashboard(
        project_id=project_id, period=Period(start=start, end=end),
        executions=executions(project_id, start), duration=durations(project_id, start),
        month=MonthSpend(**spent.model_dump(), budget_usd=plan.monthly_budget_usd,
                         token_budget=plan.monthly_token_budget,
                         budget_used=_share(spent.cost_usd, plan.monthly_budget_usd),
                         token_budget_used=_share(spent.total_tokens, plan.monthly_token_budget)),
        top_instances=top_instances(project_id, start), last_failures=last_failures(project_id),
    )


def executions(project_id: str, since: datetime) -> ExecutionCounts:
    """The executions enqueued since `since`, by status."""
    rows: CommandCursor[dict[str, Any]] = tenant_db(project_id).executions.aggregate([
        {"$match": within("enqueued_at", since, None)},
        {"$group": {"_id": "$status", "count": {"$sum": 1}}},
    ])
    by_status = {status.value: 0 for status in JobStatus}
    for row in rows:
        by_status[str(row["_id"])] = int(row["count"])
    ended = by_status[JobStatus.succeeded.value] + by_status[JobStatus.failed.value]
    rate = by_status[JobStatus.succeeded.value] / ended if ended else None
    return ExecutionCounts(by_status=by_status, total=sum(by_status.values()), success_rate=rate)


def durations(project_id: str, since: datetime) -> Durations:
    """p50 and p95 of the run time of the newest executions enqueued since `since` that ran to an end."""
    docs = (tenant_db(project_id).executions
            .find({"$and": [within("enqueued_at", since, None), {"status": {"$in": ENDED}}]},
                  {"started_at": 1, "finished_at": 1})
            .sort("enqueued_at", DESCENDING).limit(DURATION_SAMPLE))
    seconds = sorted(s for s in (run_time(d) for d in docs) if s is not None)
    return Durations(count=len(seconds), limit=DURATION_SAMPLE, p50_s=percentile(seconds, 50),
                     p95_s=percentile(seconds, 95))


def run_time(doc: dict[str, Any]) -> float | None:
    started, finished = as_utc(doc.get("started_at")), as_utc(doc.get("finished_at"))
    if started is None or finished is None:
        return None  # failed before it ran (refused at admission, undeliverable)
    return max(0.0, (finished - started).total_seconds())


def percentile(ordered: list[float], p: float) -> float | None:
    """Nearest rank: the smallest value with at least p % of the values at or below it."""
    if not ordered:
        return None
    return round(ordered[max(0, math.ceil(p / 100 * len(ordered)) - 1)], 3)


def top_instances(project_id: str, since: datetime) -> list[InstanceCost]:
    key = {"$ifNull": ["$instance_id", NO_GROUP]}
    rows = usage_report.aggregate(project_id, since, None, key)
    costs = [InstanceCost(instance_id=str(r["_id"]), cost_usd=round(float(r["cost_usd"] or 0), 8),
                          total_tokens=int(r["total_tokens"] or 0), count=int(r["count"])) for r in rows]
    costs.sort(key=lambda c: (-c.cost_usd, -c.total_tokens, c.instance_id))
    return costs[:TOP_INSTANCES]


def last_failures(project_id: str) -> list[Failure]:
    docs = (tenant_db(project_id).executions
            .find({"status": JobStatus.failed.value},
                  {"kind": 1, "instance_id": 1, "finished_at": 1, "error": 1})
            .sort([("finished_at", DESCENDING), ("_id", DESCENDING)]).limit(LAST_FAILURES))
    failures = []
    for doc in docs:
        error = doc.get("error")
        if not isinstance(error, dict):
            error = {}
        failures.append(Failure(
            execution_id=str(doc["_id"]), kind=str(doc.get("kind", "")),
            instance_id=str(doc.get("instance_id") or NO_GROUP), finished_at=as_utc(doc.get("finished_at")),
            code=error.get("code"), message=error.get("message")))
    return failures


def _share(used: float, budget: float | None) -> float | None:
    return used / budget if budget else None
