"""Opaque cursors for lists that are read page by page.

A cursor is the sort key of the last item a page held, as base64url JSON: the next page starts after it, so
pages stay stable while new items arrive (no offsets that shift). Clients treat it as a token.
"""

from __future__ import annotations

import base64
import binascii
import json
from typing import Any

from core.errors import InvalidCursor

MAX_LIMIT = 200
DEFAULT_LIMIT = 50


def encode(*key: Any) -> str:
    return base64.urlsafe_b64encode(json.dumps(list(key), default=str).encode()).decode().rstrip("=")


def decode(cursor: str, arity: int) -> list[Any]:
    """The sort key a cursor holds; InvalidCursor for anything this module did not make."""
    try:
        key = json.loads(base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)))
    except (binascii.Error, ValueError, UnicodeDecodeError):
        key = None
    if not isinstance(key, list) or len(key) != arity or not all(isinstance(k, str) for k in key):
        raise InvalidCursor("The cursor is not one this list gave out; start again without it.")
    return key


def by_id(collection: Any, query: dict[str, Any], limit: int, cursor: str | None) -> tuple[list[dict[str, Any]],
                                                                                          str | None]:
    """A page of documents in `_id` order, and the cursor of the next page (None on the last)."""
    if cursor is not None:
        query = {**query, "_id": {"$gt": decode(cursor, 1)[0]}}
    docs = list(collection.find(query).sort("_id", 1).limit(limit + 1))
    more = len(docs) > limit
    docs = docs[:limit]
    return docs, encode(docs[-1]["_id"]) if more and docs else None
