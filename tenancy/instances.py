"""Agent instances: a project's agents, in its own database (`agent_instances`, `_id` = instance_id).

An instance is a template (followed as it changes), the project's overrides, its own custom settings, and the
variables its system prompt renders with. Before an instance is written it is resolved and its prompt
rendered exactly as a job would (StrictUndefined), and a job that names it (or gives variables) is rendered
again at submit with the run's variables, so a missing variable is a 422 naming it, never a failed job later.

Every job runs an instance: the one it names, else its project's default instance of its kind, made on first
use from that kind's default template: the project's own template where it serves the kind (has a prompt for
it; for ERP analyses, also MCP servers), else the fleet's template for the kind (`erp-analyst` for ERP
analyses, `default` otherwise). Its id is `default-<kind>`, so concurrent first jobs make it once.
"""

from __future__ import annotations

import threading
import uuid
from collections.abc import Mapping
from datetime import datetime
from typing import Any

from cachetools import TTLCache
from pymongo.errors import DuplicateKeyError

from core.errors import InvalidRequest, NotFound, UnknownReference
from schemas.agents import AgentConfig
from schemas.jobs import JobKind
from schemas.orchestration import AgentInstance, AgentInstanceSpec, Page
from schemas.tenants import Tenant
from tenancy import master_audit, pages, references, registry
from tenancy.jobs import now
from tenancy.mongo import master_db, tenant_db
from tenancy.prompt_checks import check_renders

ENTITY = "agent_instance"
ERP_TEMPLATE = "erp-analyst"
FALLBACK_TEMPLATE = "default"
SYSTEM_ACTOR = "tenantq"

_defaults_lock = threading.Lock()
_defaults: TTLCache[tuple[str, str], str] = TTLCache(maxsize=10_000, ttl=600)
"""Default instance ids known to exist, by (project, kind): a project's jobs look theirs up on every submit."""


def create(project_id: str, spec: AgentInstanceSpec, actor: str) -> AgentInstance:
    tenant = registry.get_tenant(project_id)
    at = now()
    instance = _checked(tenant, spec, uuid.uuid4().hex, at, at)
    tenant_db(project_id).agent_instances.insert_one(_doc(instance))
    instance = get(project_id, instance.instance_id)  # as stored (times to the millisecond), as reads show it
    master_audit.record(actor, "created", ENTITY, instance.instance_id, None, instance, project_id=project_id)
    return instance


def update(project_id: str, instance_id: str, spec: AgentInstanceSpec, actor: str) -> AgentInstance:
    """Replace what an instance is made of (checked like a new one; its kind kept unless the body names one);
    its id, history and executions stay."""
    before = get(project_id, instance_id)
    spec = spec.model_copy(update={"kind": spec.kind or before.kind})
    if before.default_for is not None and spec.kind != before.default_for:
        raise InvalidRequest(f"Instance {instance_id!r} is the project's default for {before.default_for} jobs; "
                             "its kind stays. Nothing was changed.")
    tenant = registry.get_tenant(project_id)
    instance = _checked(tenant, spec, instance_id, before.created_at, now(), default_for=before.default_for)
    tenant_db(project_id).agent_instances.replace_one({"_id": instance_id}, _doc(instance))
    registry.forget_agents(project_id)
    instance = get(project_id, instance_id)
    master_audit.record(actor, "updated", ENTITY, instance_id, before, instance, project_id=project_id)
    return instance


def get(project_id: str, instance_id: str) -> AgentInstance:
    return registry.load_instance(project_id, instance_id)


def list_instances(project_id: str, limit: int, cursor: str | None) -> Page[AgentInstance]:
    docs, next_cursor = pages.by_id(tenant_db(project_id).agent_instances, {}, limit, cursor)
    return Page(items=[_instance(d) for d in docs], next_cursor=next_cursor)


def for_job(tenant: Tenant, kind: JobKind, instance_id: str | None,
            variables: Mapping[str, Any] | None = None) -> AgentConfig:
    """The agent a new job of `kind` runs: the named instance, else the project's default for the kind (made
    now if it is the first). A job that names an instance or gives variables has its prompt rendered first, so
    a fault is refused here; a job of the shape `/v1/jobs` always took runs as it always did (a faulty prompt
    fails that job with `template_error`)."""
    named = instance_id is not None
    if instance_id is None:
        instance_id = default_instance(tenant, kind)
    agent = agent_of(tenant.tenant_id, instance_id)
    if agent.kind is not None and agent.kind != kind.value:
        raise InvalidRequest(f"Agent instance {instance_id!r} runs {agent.kind} jobs, not {kind.value}; nothing "
                             "was enqueued.", instance_id=instance_id)
    if named or variables:
        check_renders(agent, kind.value, variables)
    return agent


def agent_of(project_id: str, instance_id: str) -> AgentConfig:
    """The resolved agent of an instance a request names; UnknownReference (422) naming the project's own."""
    try:
        return registry.agent_config(project_id, instance_id)
    except NotFound:
        ids = _ids(project_id)
        raise UnknownReference(
            f"No agent instance {instance_id!r} in this project; nothing was enqueued. Its instances: "
            f"{references.listing(ids)} (GET /api/v1/projects/{project_id}/agent-instances).",
            field="instance_id", missing=[instance_id], known=ids[:references.MAX_NAMED]) from None


def default_instance(tenant: Tenant, kind: JobKind) -> str:
    """The id of the project's default instance of `kind`, made from the kind's default template if missing.
    It has no variables of its own, and its prompt is not rendered here: a prompt the project broke fails its
    jobs with `template_error`, as it did before instances existed."""
    key = (tenant.tenant_id, kind.value)
    with _defaults_lock:
        known = _defaults.get(key)
    if known is not None:
        return known
    instance_id = f"default-{kind.value}"
    db = tenant_db(tenant.tenant_id)
    if db.agent_instances.find_one({"_id": instance_id}, {"_id": 1}) is None:
        template_id = default_template(tenant, kind)
        spec = AgentInstanceSpec(
            name=f"{kind.value} (default)", template_id=template_id, kind=kind.value, created_by=SYSTEM_ACTOR,
            description=f"Made on the project's first {kind.value} job without an instance_id, from template "
                        f"{template_id!r}.")
        at = now()
        instance = _checked(tenant, spec, instance_id, at, at, default_for=kind.value, render=False)
        try:
            db.agent_instances.insert_one(_doc(instance))
        except DuplicateKeyError:
            pass  # a concurrent first job made it
        else:
            master_audit.record(SYSTEM_ACTOR, "created", ENTITY, instance_id, None, instance,
                                project_id=tenant.tenant_id)
    with _defaults_lock:
        _defaults[key] = instance_id
    return instance_id


def default_template(tenant: Tenant, kind: JobKind) -> str:
    own: dict[str, Any] = master_db().agent_templates.find_one({"_id": tenant.template_id}) or {}
    prompts = {**(own.get("prompts") or {}), **(tenant.agent.prompts or {})}
    servers = tenant.agent.mcp_servers if tenant.agent.mcp_servers is not None else own.get("mcp_servers")
    serves = kind.value in prompts and (kind is not JobKind.erp_analysis or bool(servers))
    if serves:
        return tenant.template_id
    fleet = ERP_TEMPLATE if kind is JobKind.erp_analysis else FALLBACK_TEMPLATE
    found = master_db().agent_templates.find_one({"_id": fleet}, {"_id": 1})
    return fleet if found is not None else tenant.template_id


def _checked(tenant: Tenant, spec: AgentInstanceSpec, instance_id: str, created_at: datetime, updated_at: datetime,
             default_for: str | None = None, render: bool = True) -> AgentInstance:
    """The instance `spec` describes, resolved and (with `render`) rendered as a job would run it; nothing is
    written here."""
    template = references.template(spec.template_id)
    prompts: dict[str, str] = template.get("prompts") or {}
    kind = spec.kind or template.get("kind") or (next(iter(prompts)) if len(prompts) == 1 else None)
    if kind is None:
        raise InvalidRequest(f"Template {spec.template_id!r} serves {', '.join(prompts) or 'no kind'}: name the "
                             "instance's kind. Nothing was written.")
    settings = spec.custom_settings
    references.models([m for m in [settings.model, *(settings.fallbacks or [])] if m], "custom_settings.model")
    references.require("mcp_servers", settings.mcp_servers or [], "custom_settings.mcp_servers")
    instance = AgentInstance(
        instance_id=instance_id, project_id=tenant.tenant_id, template_id=spec.template_id, kind=kind,
        name=spec.name, description=spec.description, default_for=default_for,
        system_prompt_variables=spec.system_prompt_variables, system_prompt_version=spec.system_prompt_version,
        custom_settings=settings, created_by=spec.created_by, created_at=created_at, updated_at=updated_at)
    agent = registry.resolve_agent(tenant, instance)
    if kind not in agent.prompt_sources:
        raise UnknownReference(f"Template {spec.template_id!r} has no system prompt for {kind} jobs (it has: "
                               f"{', '.join(agent.prompt_sources) or 'none'}). Nothing was written.",
                               field="kind", template=spec.template_id)
    if render:  # a pinned version that does not exist was refused by resolve_agent already
        check_renders(agent, kind)
    return instance


def _doc(instance: AgentInstance) -> dict[str, Any]:
    doc = instance.model_dump(mode="json", exclude={"instance_id", "created_at", "updated_at"})
    return {"_id": instance.instance_id, **doc, "created_at": instance.created_at, "updated_at": instance.updated_at}


def _instance(doc: dict[str, Any]) -> AgentInstance:
    return AgentInstance.model_validate({**doc, "instance_id": doc["_id"]})


def _ids(project_id: str) -> list[str]:
    return [str(d["_id"]) for d in tenant_db(project_id).agent_instances.find({}, {"_id": 1}).sort("_id", 1)
            .limit(references.MAX_NAMED + 1)]

