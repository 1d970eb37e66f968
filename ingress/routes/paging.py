"""The query parameters every list takes: `limit` (1-200) and the opaque `cursor` of the previous page."""

from __future__ import annotations

from typing import Annotated

from fastapi import Query

from tenancy.pages import DEFAULT_LIMIT, MAX_LIMIT

Limit = Annotated[int, Query(ge=1, le=MAX_LIMIT, description=f"Items per page, 1-{MAX_LIMIT}.")]
Cursor = Annotated[str | None, Query(max_length=1_000, description="`next_cursor` of the previous page.")]
DEFAULT = DEFAULT_LIMIT
