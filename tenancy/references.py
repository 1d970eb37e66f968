"""Checks that what a request names exists: agent templates, system prompts and their versions, model
configs, MCP servers. A miss is an UnknownReference (422) that names what does exist, raised before anything
is written.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from core.errors import UnknownReference
from tenancy.mongo import master_db

MAX_NAMED = 30
ENTITIES = {"agent_templates": "Agent template", "system_prompts": "System prompt",
            "model_configs": "Model config", "mcp_servers": "MCP server", "tools": "Tool"}


def known(collection: str, limit: int = MAX_NAMED) -> list[str]:
    return [str(d["_id"]) for d in master_db()[collection].find({}, {"_id": 1}).sort("_id", 1).limit(limit + 1)]


def listing(ids: list[str], limit: int = MAX_NAMED) -> str:
    if not ids:
        return "none"
    shown = ", ".join(ids[:limit])
    return shown + (" and more" if len(ids) > limit else "")


def require(collection: str, names: Iterable[str], field: str) -> None:
    """Every name exists in the master collection, or UnknownReference naming those that do."""
    wanted = list(dict.fromkeys(names))
    if not wanted:
        return
    found = {d["_id"] for d in master_db()[collection].find({"_id": {"$in": wanted}}, {"_id": 1})}
    missing = [n for n in wanted if n not in found]
    if missing:
        raise unknown(collection, missing, field)


def unknown(collection: str, missing: list[str], field: str) -> UnknownReference:
    existing = known(collection)
    return UnknownReference(
        f"{ENTITIES[collection]}(s) {', '.join(map(repr, missing))} named in {field} do not exist; nothing was "
        f"written. Existing: {listing(existing)}.", field=field, missing=missing, known=existing[:MAX_NAMED])


def template(template_id: str, field: str = "template_id") -> dict[str, Any]:
    """The template's document, or UnknownReference naming the templates that exist."""
    doc = master_db().agent_templates.find_one({"_id": template_id})
    if doc is None:
        raise unknown("agent_templates", [template_id], field)
    return doc


def models(names: Iterable[str], field: str) -> None:
    """Model names without a provider prefix must be model configs; `provider/model` strings go to LiteLLM."""
    require("model_configs", [n for n in names if "/" not in n], field)
