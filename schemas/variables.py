"""Prompt variables: the values an agent instance (and each run) substitutes into its system prompt.

They come from a project's key, so they are bounded like every other tenant input: a few dozen names that
are plain identifiers, a few levels of nesting, a small JSON size. `agent`, `tenant` and `kind` are the
variables tenantq itself gives every prompt; a variable of the same name would hide them, so it is refused.
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
MAX_DEPTH = 8


def _bounded(value: dict[str, Any]) -> dict[str, Any]:
    if len(value) > MAX_VARIABLES:
        raise ValueError(f"at most {MAX_VARIABLES} variables")
    for name in value:
        if not NAME_RE.match(name):
            raise ValueError(f"variable name {name[:70]!r} is not an identifier (letters, digits, '_')")
        if name in RESERVED:
            raise ValueError(f"variable name {name!r} is reserved: tenantq gives every prompt "
                             f"{', '.join(sorted(RESERVED))}")
    return bounded_json(value, "variables", MAX_DEPTH, MAX_VARIABLES_BYTES)


def bounded_json(value: dict[str, Any], what: str, max_depth: int, max_bytes: int) -> dict[str, Any]:
    """`value` unchanged, or ValueError when it nests deeper than `max_depth` or is larger than `max_bytes`
    as JSON (checked in that order, so a deep value never reaches a recursive encoder)."""
    if _depth(value, max_depth) > max_depth:
        raise ValueError(f"{what} nest at most {max_depth} levels deep")
    if len(json.dumps(value, default=str)) > max_bytes:
        raise ValueError(f"{what} take at most {max_bytes // 1024} KiB as JSON")
    return value


def _depth(value: Any, limit: int, level: int = 1) -> int:
    """How deep lists and objects nest, counted no further than one level past `limit`."""
    if level > limit or not isinstance(value, dict | list):
        return level
    children = value.values() if isinstance(value, dict) else value
    return max((_depth(child, limit, level + 1) for child in children), default=level)


PromptVariables = Annotated[dict[str, Any], AfterValidator(_bounded)]
