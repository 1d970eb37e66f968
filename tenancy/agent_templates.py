"""The agent templates of the master database, as a catalogue (the deprecated dynamic routes list them)."""

from __future__ import annotations

from schemas.agents import AgentTemplate
from tenancy.mongo import master_db

_FIELDS = set(AgentTemplate.model_fields) - {"template_id"}


def list_templates() -> list[AgentTemplate]:
    """Every template, by id; fields this version does not know are left out rather than refused."""
    return [AgentTemplate(template_id=str(doc["_id"]), **{k: v for k, v in doc.items() if k in _FIELDS})
            for doc in master_db().agent_templates.find().sort("_id", 1)]
