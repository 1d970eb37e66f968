"""Token usage of a project, by agent instance, model or day, aggregated in the project's own database.

Every model call leaves one `token_usage` document (written with the job's outcome, exactly once), so these
sums are what the project was charged for; `count` is the number of calls. Records written before agent
instances existed have no instance_id and are grouped as "none".
"""

from __future__ import annotations

from datetime import date, datetime
from typing import Any

from schemas.reports import NO_GROUP, TokenUsageReport, UsageFigures, UsageGroup, UsageGroupBy
from tenancy.jobs import now
from tenancy.mongo import tenant_db
from tenancy.periods import days, usage_days, within

FIGURES = ("prompt_tokens", "completion_tokens", "total_tokens", "cost_usd")

_KEYS: dict[UsageGroupBy, Any] = {
    UsageGroupBy.instance: {"$ifNull": ["$instance_id", NO_GROUP]},
    UsageGroupBy.model: {"$ifNull": ["$model", NO_GROUP]},
    UsageGroupBy.day: {"$dateToString": {"format": "%Y-%m-%d", "date": "$created_at"}},
}


def report(project_id: str, start: date | None, end: date | None, group_by: UsageGroupBy) -> TokenUsageReport:
    """Usage from the start of `start` to the end of `end` (UTC days; by default this month so far), per
    group and in total."""
    start, end = usage_days(start, end, now().date())
    since, until = days(start, end)
    groups = [UsageGroup(key=str(row["_id"]), **_figures(row))
              for row in aggregate(project_id, since, until, _KEYS[group_by])]
    if group_by is UsageGroupBy.day:
        groups.sort(key=lambda g: g.key)
    else:
        groups.sort(key=lambda g: (-g.cost_usd, -g.total_tokens, g.key))
    return TokenUsageReport(project_id=project_id, start_date=start, end_date=end, group_by=group_by,
                            groups=groups, total=totals(project_id, since, until))


def totals(project_id: str, since: datetime | None, until: datetime | None) -> UsageFigures:
    rows = aggregate(project_id, since, until, None)
    return UsageFigures(**_figures(rows[0])) if rows else UsageFigures()


def aggregate(project_id: str, since: datetime | None, until: datetime | None, key: Any) -> list[dict[str, Any]]:
    """One `$group` of the window's usage documents by `key` (None: all together), summing every figure."""
    sums: dict[str, Any] = {name: {"$sum": f"${name}"} for name in FIGURES}
    pipeline: list[dict[str, Any]] = [
        {"$match": within("created_at", since, until)},
        {"$group": {"_id": key, **sums, "count": {"$sum": 1}}},
    ]
    return list(tenant_db(project_id).token_usage.aggregate(pipeline))


def _figures(row: dict[str, Any]) -> dict[str, Any]:
    """The sums of a group row; cost rounded to a millionth of a cent, where float sums stop meaning much."""
    return {"prompt_tokens": int(row.get("prompt_tokens") or 0),
            "completion_tokens": int(row.get("completion_tokens") or 0),
            "total_tokens": int(row.get("total_tokens") or 0),
            "cost_usd": round(float(row.get("cost_usd") or 0.0), 8), "count": int(row.get("count") or 0)}
