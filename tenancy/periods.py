"""Time windows of the read-side views, and the filter that selects a window on any server we run on.

A range filter is always written as `$and` of one-sided conditions. The embedded server (nx-27017 over
SQLite) compares dates wrongly in an aggregation's `$match` when the bounds sit in one field document
(`{"at": {"$gte": a, "$lt": b}}` matched nothing, `{"at": {"$gte": a}}` matched everything), while the
`$and` form is right there and is the same query to MongoDB. It also compares dates to the second where
MongoDB does to the millisecond, so every bound here is a whole second (a day, a month), where both agree.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta
from typing import Any

from core.errors import InvalidRequest

MAX_RANGE_DAYS = 366


def day_start(day: date) -> datetime:
    return datetime.combine(day, time.min, tzinfo=UTC)


def month_start(moment: datetime) -> datetime:
    return moment.astimezone(UTC).replace(day=1, hour=0, minute=0, second=0, microsecond=0)


def days(start: date, end: date) -> tuple[datetime, datetime]:
    """The instants from the start of `start` to the end of `end` (inclusive days, UTC), half open."""
    return day_start(start), day_start(end) + timedelta(days=1)


def within(field: str, start: datetime | None, end: datetime | None) -> dict[str, Any]:
    """`start <= field < end`; a missing bound is left out."""
    bounds: list[dict[str, Any]] = []
    if start is not None:
        bounds.append({field: {"$gte": start}})
    if end is not None:
        bounds.append({field: {"$lt": end}})
    return {"$and": bounds} if bounds else {}


def usage_days(start: date | None, end: date | None, today: date) -> tuple[date, date]:
    """The days a usage report covers: by default this month so far; at most MAX_RANGE_DAYS days."""
    end = end or today
    start = start or min(end, today).replace(day=1)
    checked(start, end)
    if (end - start).days >= MAX_RANGE_DAYS:
        raise InvalidRequest(f"The range {start} to {end} spans more than {MAX_RANGE_DAYS} days; ask for a year "
                             "at most.", field="end_date")
    return start, end


def checked(start: date | None, end: date | None) -> None:
    if start is not None and end is not None and start > end:
        raise InvalidRequest(f"start_date {start} is after end_date {end}; nothing can match.", field="start_date")
