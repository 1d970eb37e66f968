"""Identifiers that cross every layer."""

from __future__ import annotations

import re
import uuid
from typing import Annotated

from pydantic import StringConstraints

TENANT_ID_PATTERN = r"^[a-z0-9][a-z0-9-]{1,62}$"
TENANT_ID_RE = re.compile(TENANT_ID_PATTERN)

TenantId = Annotated[str, StringConstraints(pattern=TENANT_ID_PATTERN)]
"""Tenant ids name databases and Redis keys, so they are short, lower case and safe everywhere."""


def new_job_id() -> str:
    return uuid.uuid4().hex
