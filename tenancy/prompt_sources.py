"""Reading a system prompt's source, latest or of one version, as agents resolve it (`tenancy.registry`).

Writing versions is `tenancy.prompt_versions`; this side only reads, so the registry can use it without
depending on the service that changes prompts (which clears the registry's cached agents).
"""

from __future__ import annotations

from typing import Any

from core.errors import UnknownReference
from tenancy.mongo import master_db


def number(doc: dict[str, Any]) -> int:
    """A document's version number; a prompt seeded before versions existed is version 1."""
    value = doc.get("version")
    return int(value) if isinstance(value, int | str) else 1


def source(prompt_id: str, version: int | None = None, field: str = "system_prompt_version") -> str:
    """The source of a version (None: the latest); UnknownReference naming the versions that exist."""
    head = master_db().system_prompts.find_one({"_id": prompt_id})
    if head is None:
        raise UnknownReference(f"System prompt {prompt_id!r} does not exist.", field=field, missing=[prompt_id])
    latest = number(head)
    if version is None or version == latest:
        return str(head["template"])
    doc = master_db().system_prompt_versions.find_one({"_id": f"{prompt_id}:{version}"})
    if doc is None:
        stored = {number(d) for d in master_db().system_prompt_versions.find({"prompt_id": prompt_id}, {"version": 1})}
        versions = ", ".join(str(v) for v in sorted(stored | {latest}))
        raise UnknownReference(f"System prompt {prompt_id!r} has no version {version}; it has versions {versions}. "
                               "Nothing was written.", field=field, prompt_id=prompt_id, latest=latest)
    return str(doc["template"])
