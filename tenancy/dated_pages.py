"""Cursor pagination, newest first, over a date field of a tenant collection.

The cursor is opaque to clients: a whole second S and how many entries dated within S were sent already.
The next page is read below the end of S, skipping those. Bounds are whole seconds because the embedded
server (nx-27017) compares dates in queries to the second while MongoDB compares them to the millisecond:
against a whole second both give the same answer, so a page never repeats or loses an entry on either. The
cursor does not compare `_id`s, whose types differ (job events have strings, instance changes ObjectIds,
and MongoDB never matches across types). Entries added while a client pages are newer than what it has still
to read, so they never shift its pages.
"""

from __future__ import annotations

import base64
import binascii
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from pymongo import DESCENDING
from pymongo.collection import Collection

from core.errors import InvalidRequest
from tenancy.jobs import as_utc

MAX_LIMIT = 200
SECOND = timedelta(seconds=1)


@dataclass(frozen=True)
class Cursor:
    second: datetime
    sent: int

    def encode(self) -> str:
        raw = json.dumps({"s": self.second.isoformat(), "n": self.sent}, separators=(",", ":")).encode()
        return base64.urlsafe_b64encode(raw).decode().rstrip("=")

    @classmethod
    def decode(cls, token: str) -> Cursor:
        try:
            raw = json.loads(base64.urlsafe_b64decode(token + "=" * (-len(token) % 4)))
            second, sent = as_utc(raw["s"]), int(raw["n"])
        except (binascii.Error, ValueError, TypeError, KeyError) as exc:
            raise InvalidRequest("The cursor is not one this API gave out: pass `next_cursor` of the previous "
                                 "page unchanged, or leave it out for the first page.", field="cursor") from exc
        if second is None or second.microsecond or sent < 0:
            raise InvalidRequest("The cursor is not one this API gave out.", field="cursor")
        return cls(second, sent)


def whole_second(moment: datetime) -> datetime:
    return moment.replace(microsecond=0)


def newest_first(collection: Collection[Any], field: str, conditions: Sequence[Mapping[str, Any]], limit: int,
                 cursor: str | None, projection: Mapping[str, Any] | None = None
                 ) -> tuple[list[dict[str, Any]], str | None]:
    """One page of the documents matching every condition, newest `field` first, and the next page's cursor
    (None after the last page)."""
    after = Cursor.decode(cursor) if cursor else None
    clauses = [dict(c) for c in conditions if c]
    if after is not None:
        clauses.append({field: {"$lt": after.second + SECOND}})
    query = {"$and": clauses} if clauses else {}
    found = (collection.find(query, projection).sort([(field, DESCENDING), ("_id", DESCENDING)])
             .skip(after.sent if after else 0).limit(limit + 1))
    docs = list(found)
    if len(docs) <= limit:
        return docs, None
    docs = docs[:limit]
    seconds = [whole_second(at) for at in (as_utc(d[field]) for d in docs) if at is not None]
    last = seconds[-1]
    sent = seconds.count(last) + (after.sent if after is not None and after.second == last else 0)
    return docs, Cursor(last, sent).encode()
