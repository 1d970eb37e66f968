"""Prompt variables: the values an agent instance (and each run) substitutes into its system prompt.

They come from a project's key, so they are bounded like every other tenant input: a few dozen names that
are plain identifiers, a small JSON size. `agent`, `tenant` and `kind` are the variables tenantq itself
gives every prompt; a variable of the same name would hide them, so it is refused.
"""

from __future__ import annotations

import json
import re
from typing import Annotated, Any

from pydantic import AfterValidator

NAME_RE = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,63}$")
RESERVED = frozenset({"agent", "tenant", "kind"})
MAX_VARIABLES = 64
MAX_VARIABLES_BYTES = 16 * 1024


def _bounded(value: dict[str, Any]) -> dict[str, Any]:
    if len(value) > MAX_VARIABLES:
        raise ValueError(f"at most {MAX_VARIABLES} variables")
    for name in value:
        if not NAME_RE.match(name):
            raise ValueError(f"variable name {name[:70]!r} is not an identifier (letters, digits, '_')")
        if name in RESERVED:
            raise ValueError(f"variable name {name!r} is reserved: tenantq gives every prompt "
                             f"{', '.join(sorted(RESERVED))}")
    if len(json.dumps(value, default=str)) > MAX_VARIABLES_BYTES:
        raise ValueError(f"variables take at most {MAX_VARIABLES_BYTES // 1024} KiB as JSON")
    return value


PromptVariables = Annotated[dict[str, Any], AfterValidator(_bounded)]
