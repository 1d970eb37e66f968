"""System prompts with versions, in the master database.

`system_prompts` holds each prompt's head: its latest version number and source (what agents that follow the
latest render) and its name and description; `system_prompt_versions` holds every version, `_id` =
"<prompt id>:<version>", never changed once written. An update makes the next version: the head is moved on
with a compare-and-set on its version, so two concurrent updates get two versions, then the version's
document is written. A prompt seeded before versions existed has no number: it is version 1.
"""

from __future__ import annotations

from typing import Any

from pymongo import ReturnDocument
from pymongo.errors import DuplicateKeyError

from core.errors import AlreadyExists, NotFound, TenantqError
from schemas.orchestration import (
    Page,
    SystemPromptSpec,
    SystemPromptSummary,
    SystemPromptUpdate,
    SystemPromptVersion,
    SystemPromptView,
)
from tenancy import master_audit, pages, registry
from tenancy.jobs import as_utc, now
from tenancy.mongo import master_db
from tenancy.prompt_checks import check_compiles
from tenancy.prompt_sources import number

ENTITY = "system_prompt"
MAX_CAS_ROUNDS = 20


def create(spec: SystemPromptSpec, actor: str) -> SystemPromptView:
    check_compiles(spec.template, spec.prompt_id)
    db = master_db()
    if db.system_prompts.find_one({"_id": spec.prompt_id}, {"_id": 1}) is not None:
        raise _exists(spec.prompt_id)
    at = now()
    head = {"_id": spec.prompt_id, "template": spec.template, "version": 1, "name": spec.name,
            "description": spec.description, "created_by": spec.created_by, "created_at": at, "updated_at": at}
    try:
        db.system_prompts.insert_one(head)
    except DuplicateKeyError as exc:
        raise _exists(spec.prompt_id) from exc
    _write_version(spec.prompt_id, 1, spec.template, spec.created_by, at)
    view = get(spec.prompt_id)
    master_audit.record(actor, "created", ENTITY, spec.prompt_id, None, _summary(_head(spec.prompt_id)))
    return view


def update(prompt_id: str, change: SystemPromptUpdate, actor: str) -> SystemPromptView:
    """Add a version; the earlier ones stay, and instances that pin one keep rendering it."""
    check_compiles(change.template, prompt_id)
    before = _summary(_head(prompt_id))
    _number_legacy(prompt_id)
    db = master_db()
    for _ in range(MAX_CAS_ROUNDS):
        current = _head(prompt_id)
        version = number(current)
        fields: dict[str, Any] = {"template": change.template, "version": version + 1, "updated_at": now()}
        fields.update({k: v for k, v in (("name", change.name), ("description", change.description))
                       if v is not None})
        moved = db.system_prompts.find_one_and_update({"_id": prompt_id, "version": version}, {"$set": fields},
                                                      return_document=ReturnDocument.AFTER)
        if moved is not None:
            _write_version(prompt_id, version + 1, change.template, change.created_by, now())
            break
    else:
        raise TenantqError(f"System prompt {prompt_id!r} is being updated by many at once; try again.")
    registry.clear_agent_cache()  # this process renders the new version at once; others within the cache's TTL
    view = get(prompt_id)
    master_audit.record(actor, "updated", ENTITY, prompt_id, before, _summary(_head(prompt_id)))
    return view


def get(prompt_id: str) -> SystemPromptView:
    head = _head(prompt_id)
    return SystemPromptView(**_summary(head).model_dump(), versions=_versions(head))


def list_prompts(limit: int, cursor: str | None) -> Page[SystemPromptSummary]:
    docs, next_cursor = pages.by_id(master_db().system_prompts, {}, limit, cursor)
    return Page(items=[_summary(d) for d in docs], next_cursor=next_cursor)


def _head(prompt_id: str) -> dict[str, Any]:
    head = master_db().system_prompts.find_one({"_id": prompt_id})
    if head is None:
        raise NotFound(f"No system prompt {prompt_id!r}.", entity=ENTITY, entity_id=prompt_id)
    return head


def _number_legacy(prompt_id: str) -> None:
    """A prompt seeded before versions existed becomes version 1, its source kept as that version."""
    head = _head(prompt_id)
    if head.get("version") is None:
        _write_version(prompt_id, 1, str(head["template"]), None, as_utc(head.get("created_at")) or now())
        master_db().system_prompts.update_one({"_id": prompt_id, "version": {"$exists": False}},
                                              {"$set": {"version": 1}})


def _write_version(prompt_id: str, version: int, template: str, created_by: str | None, at: Any) -> None:
    doc = {"_id": f"{prompt_id}:{version}", "prompt_id": prompt_id, "version": version, "template": template,
           "created_by": created_by, "created_at": at}
    master_db().system_prompt_versions.replace_one({"_id": doc["_id"]}, doc, upsert=True)


def _versions(head: dict[str, Any]) -> list[SystemPromptVersion]:
    prompt_id, latest = str(head["_id"]), number(head)
    found = {number(d): d for d in master_db().system_prompt_versions.find({"prompt_id": prompt_id})}
    found.setdefault(latest, {"version": latest, "template": head["template"], "created_at": head.get("updated_at")})
    return [SystemPromptVersion(version=v, template=str(d["template"]), created_at=as_utc(d.get("created_at")),
                                created_by=d.get("created_by")) for v, d in sorted(found.items(), reverse=True)]


def _summary(head: dict[str, Any]) -> SystemPromptSummary:
    return SystemPromptSummary(
        prompt_id=str(head["_id"]), name=head.get("name"), description=head.get("description"),
        version=number(head), template=str(head["template"]), created_by=head.get("created_by"),
        created_at=as_utc(head.get("created_at")), updated_at=as_utc(head.get("updated_at")))


def _exists(prompt_id: str) -> AlreadyExists:
    return AlreadyExists(f"System prompt {prompt_id!r} exists already; PUT /api/v1/master/system-prompts/"
                         f"{prompt_id} with the new template adds a version.", entity=ENTITY, entity_id=prompt_id)
