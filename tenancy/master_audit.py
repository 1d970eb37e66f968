"""The audit trail of master data and agent instances: who changed what, with the record before and after.

Every change goes to the master database's `audit_log`; a change of a project's instance goes to that
project's own `audit_log` too, beside its jobs' events, so a project sees its own history without reading
the master database. An entry is written after the change it describes (an entry of a change that was never
made would be worse than a change whose entry a crash lost).
"""

from __future__ import annotations

import uuid
from typing import Any

from pydantic import BaseModel

from tenancy.jobs import now
from tenancy.mongo import master_db, tenant_db


def snapshot(record: BaseModel | dict[str, Any] | None) -> dict[str, Any] | None:
    if record is None:
        return None
    return record.model_dump(mode="json") if isinstance(record, BaseModel) else dict(record)


def record(actor: str, action: str, entity: str, entity_id: str, before: BaseModel | dict[str, Any] | None,
           after: BaseModel | dict[str, Any] | None, *, project_id: str | None = None) -> None:
    """Audit one change: `action` is created or updated; `entity` the kind of record (project, agent_template,
    system_prompt, model_config, tool, mcp_server, agent_instance)."""
    entry = {"at": now(), "actor": actor, "action": action, "entity": entity, "entity_id": entity_id,
             "before": snapshot(before), "after": snapshot(after)}
    master_db().audit_log.insert_one({"_id": uuid.uuid4().hex, **entry})
    if project_id is not None:
        tenant_db(project_id).audit_log.insert_one({"_id": uuid.uuid4().hex, **entry})
