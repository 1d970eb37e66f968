"""A project's audit log, newest first: the events of its jobs and the changes to its agent instances.

Both live in the project's `audit_log` collection in two shapes: job events {job_id, event, at, data} and
instance changes {at, actor, action, entity, entity_id, before, after}. Either's name (`event` or `action`)
is the entry's action, and the action filter matches both.
"""

from __future__ import annotations

from datetime import date, datetime
from typing import Any

from schemas.audit import AuditEntry, AuditPage
from tenancy.dated_pages import newest_first
from tenancy.jobs import as_utc
from tenancy.mongo import tenant_db
from tenancy.periods import checked, days, within


def page(project_id: str, *, action: str | None = None, start: date | None = None, end: date | None = None,
         limit: int = 50, cursor: str | None = None) -> AuditPage:
    checked(start, end)
    since = days(start, start)[0] if start is not None else None
    until = days(end, end)[1] if end is not None else None
    conditions: list[dict[str, Any]] = [within("at", since, until) or {"at": {"$exists": True}}]
    if action is not None:
        conditions.append({"$or": [{"event": action}, {"action": action}]})
    docs, next_cursor = newest_first(tenant_db(project_id).audit_log, "at", conditions, limit, cursor)
    return AuditPage(entries=[entry(doc) for doc in docs], next_cursor=next_cursor)


def entry(doc: dict[str, Any]) -> AuditEntry:
    at = as_utc(doc["at"])
    assert at is not None
    fields = {name: plain(doc.get(name)) for name in ("job_id", "data", "actor", "entity", "entity_id", "before",
                                                       "after")}
    for name in ("job_id", "actor", "entity", "entity_id"):
        fields[name] = None if fields[name] is None else str(fields[name])
    return AuditEntry(id=str(doc["_id"]), at=at, action=str(doc.get("event") or doc.get("action") or ""),
                      **fields)


def plain(value: Any) -> Any:
    """A stored value as JSON can carry it: ids and other BSON types as strings, dates as UTC."""
    if isinstance(value, dict):
        return {str(k): plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [plain(v) for v in value]
    if isinstance(value, datetime):
        return as_utc(value)
    if value is None or isinstance(value, str | int | float | bool):
        return value
    return str(value)
