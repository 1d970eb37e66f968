"""Agent templates in the master database (`agent_templates`, `_id` = agent_id).

A template names its system prompt per job kind (`prompts`; `system_prompt_id` fills it for the template's
kind, or every kind), and what it names must exist when it is saved: prompts, model configs, MCP servers.
Instances follow their template as it changes; each process sees a change within TENANTQ_AGENT_CACHE_TTL_S.
"""

from __future__ import annotations

from typing import Any

from pymongo.errors import DuplicateKeyError

from core.errors import AlreadyExists, InvalidRequest, NotFound
from schemas.jobs import JobKind
from schemas.orchestration import AgentTemplateSpec, AgentTemplateView, Page
from tenancy import master_audit, pages, references, registry
from tenancy.jobs import as_utc, now
from tenancy.mongo import master_db

ENTITY = "agent_template"
ROUTE = "/api/v1/master/agents"
RUNNABLE = [k.value for k in JobKind if k is not JobKind.noop]


def create(spec: AgentTemplateSpec, actor: str) -> AgentTemplateView:
    _check(spec)
    at = now()
    try:
        master_db().agent_templates.insert_one({"_id": spec.agent_id, **_doc(spec), "created_at": at,
                                                "updated_at": at})
    except DuplicateKeyError as exc:
        raise AlreadyExists(f"Agent template {spec.agent_id!r} exists already; PUT {ROUTE}/{spec.agent_id} "
                            "changes it.", entity=ENTITY, entity_id=spec.agent_id) from exc
    view = get(spec.agent_id)
    master_audit.record(actor, "created", ENTITY, spec.agent_id, None, view)
    return view


def replace(agent_id: str, spec: AgentTemplateSpec, actor: str) -> AgentTemplateView:
    if spec.agent_id != agent_id:
        raise InvalidRequest(f"The body names agent {spec.agent_id!r} but the path {agent_id!r}; nothing was "
                             "changed.")
    before = get(agent_id)
    _check(spec)
    master_db().agent_templates.replace_one({"_id": agent_id}, {
        "_id": agent_id, **_doc(spec), "created_at": before.created_at or now(), "updated_at": now()})
    registry.clear_agent_cache()  # this process resolves the new template at once; others within the cache's TTL
    view = get(agent_id)
    master_audit.record(actor, "updated", ENTITY, agent_id, before, view)
    return view


def get(agent_id: str) -> AgentTemplateView:
    doc = master_db().agent_templates.find_one({"_id": agent_id})
    if doc is None:
        raise NotFound(f"No agent template {agent_id!r}; GET {ROUTE} lists them.", entity=ENTITY, entity_id=agent_id)
    return _view(doc)


def list_templates(limit: int, cursor: str | None) -> Page[AgentTemplateView]:
    docs, next_cursor = pages.by_id(master_db().agent_templates, {}, limit, cursor)
    return Page(items=[_view(d) for d in docs], next_cursor=next_cursor)


def _check(spec: AgentTemplateSpec) -> None:
    prompts = spec.prompt_ids()
    if not prompts:
        raise InvalidRequest("An agent template needs a system prompt: give system_prompt_id (or prompts, job kind "
                             "-> prompt id). Nothing was written.")
    odd = [k for k in prompts if k not in RUNNABLE]
    if odd:
        raise InvalidRequest(f"prompts names job kind(s) {', '.join(odd)}; the kinds are {', '.join(RUNNABLE)}. "
                             "Nothing was written.")
    references.require("system_prompts", prompts.values(), "system_prompt_id / prompts")
    references.models([m for m in [spec.model, *(spec.fallbacks or [])] if m], "model / fallbacks")
    references.require("mcp_servers", spec.mcp_servers or [], "mcp_servers")


def _doc(spec: AgentTemplateSpec) -> dict[str, Any]:
    doc = spec.model_dump(mode="json", exclude={"agent_id"}, exclude_none=True)
    doc["prompts"] = spec.prompt_ids()
    return doc


def _view(doc: dict[str, Any]) -> AgentTemplateView:
    fields = {k: v for k, v in doc.items() if k in AgentTemplateView.model_fields}
    fields.update(created_at=as_utc(doc.get("created_at")), updated_at=as_utc(doc.get("updated_at")))
    return AgentTemplateView.model_validate({**fields, "agent_id": doc["_id"]})
