"""The tenant registry in the master database, and the agent configuration each job runs with.

A tenant's plan is mirrored into Redis on every change, because admission reads it there on every job.
Agent configs are resolved from the master template plus the tenant's overrides and cached per process
(500 entries, 60 s), so a busy worker reads the master database about once a minute per tenant.

System prompts are tenant-owned Jinja2 templates: `save_prompt` is the way to store one, and it stores only
what passes the sandbox's checks (size, compiles, no huge constant); an agent may name only prompts that exist
and pass them too.
"""

from __future__ import annotations

import threading
from collections.abc import Mapping
from datetime import UTC, datetime
from functools import lru_cache
from typing import Any

from cachetools import TTLCache
from pydantic import ValidationError
from pymongo.errors import DuplicateKeyError

from core.errors import ConfigurationError, NotFound, TemplateError, TenantExists, UnknownTemplate, UnknownTenant
from core.logs import get_logger
from core.settings import get_settings
from schemas.agents import AgentConfig, AgentSettings, ModelConfig
from schemas.orchestration import AgentInstance
from schemas.tenants import Plan, Tenant, TenantCreate, TenantStatus
from tenancy import prompt_sources
from tenancy.apikeys import issue_key
from tenancy.mongo import master_db, tenant_db, validate_tenant_id
from tenancy.queues import get_queues
from tenancy.sandbox.render import check

TEMPLATES_NAMED = 50
"""Most template ids an unknown-template error lists."""


def create_tenant(spec: TenantCreate) -> tuple[Tenant, str]:
    """Register a tenant and issue its first API key (returned once, stored hashed)."""
    validate_tenant_id(spec.tenant_id)  # a spec built without validation must not name a database
    db = master_db()
    if db.agent_templates.find_one({"_id": spec.template_id}, {"_id": 1}) is None:
        templates = template_ids()
        raise UnknownTemplate(
            f"Agent template {spec.template_id!r} does not exist; nothing was created. Name one of: "
            f"{', '.join(templates) or '(none: run `tenantq up` once to seed the defaults)'}.",
            tenant_id=spec.tenant_id, template_id=spec.template_id, templates=templates)
    check_prompts(spec.agent.prompts, tenant_id=spec.tenant_id)
    tenant = Tenant(**spec.model_dump(), created_at=datetime.now(UTC))
    doc = tenant.model_dump(mode="json", exclude={"tenant_id"})
    doc["created_at"] = tenant.created_at
    try:
        db.tenants.insert_one({"_id": tenant.tenant_id, **doc})
    except DuplicateKeyError as exc:
        raise TenantExists(f"Tenant {tenant.tenant_id!r} exists already.", tenant_id=tenant.tenant_id) from exc
    sync_tenant(tenant)
    return tenant, issue_key(tenant.tenant_id)


def template_ids(limit: int = TEMPLATES_NAMED) -> list[str]:
    """The ids of the agent templates a tenant may name, in order (the first `limit`)."""
    return [str(doc["_id"]) for doc in master_db().agent_templates.find({}, {"_id": 1}).sort("_id", 1).limit(limit)]


def get_tenant(tenant_id: str) -> Tenant:
    doc = master_db().tenants.find_one({"_id": validate_tenant_id(tenant_id)})
    if doc is None:
        raise UnknownTenant(f"Tenant {tenant_id!r} does not exist.", tenant_id=tenant_id)
    return _tenant_from(doc)


def list_tenants() -> list[Tenant]:
    return [_tenant_from(doc) for doc in master_db().tenants.find().sort("_id", 1)]


def update_plan(tenant_id: str, plan: Plan) -> Tenant:
    return _update(tenant_id, {"plan": plan.model_dump(mode="json")})


def set_status(tenant_id: str, status: TenantStatus) -> Tenant:
    return _update(tenant_id, {"status": status.value})


def update_agent(tenant_id: str, overrides: AgentSettings) -> Tenant:
    check_prompts(overrides.prompts, tenant_id=tenant_id)
    tenant = _update(tenant_id, {"agent": overrides.model_dump(mode="json", exclude_none=True)})
    forget_agents(tenant_id)
    return tenant


def save_prompt(name: str, source: str) -> None:
    """Store a system prompt. One that is too long, does not compile in the sandbox or holds a huge constant
    is refused with a TemplateError naming the problem (the limit, for a limit), and nothing is stored."""
    if not name or len(name) > 200:
        raise TemplateError("A system prompt's name is 1 to 200 characters; nothing was saved.")
    check_prompt(name, source, "cannot be saved")
    master_db().system_prompts.replace_one({"_id": name}, {"_id": name, "template": source}, upsert=True)
    clear_agent_cache()


def check_prompt(name: str, source: str, refusal: str, tenant_id: str | None = None) -> None:
    try:
        check(source)
    except TemplateError as exc:
        context = {**exc.context, "template": name, "tenant_id": tenant_id}
        raise type(exc)(f"System prompt {name!r} {refusal}: {exc.message}. Nothing was saved.", **context) from exc


def check_prompts(prompts: dict[str, str] | None, *, tenant_id: str) -> None:
    """The prompts an agent names (job kind -> prompt name) exist and pass the checks."""
    for name in sorted(set((prompts or {}).values())):
        doc = master_db().system_prompts.find_one({"_id": name})
        if doc is None:
            raise TemplateError(f"System prompt {name!r} does not exist; save it first (tenantq prompts save). "
                                "Nothing was saved.", tenant_id=tenant_id, template=name)
        check_prompt(name, str(doc["template"]), "may not be used", tenant_id)


def ensure_queue(tenant_id: str) -> None:
    """Mirror a tenant into Redis when Redis has lost it (a flushed or replaced Redis)."""
    if not get_queues().has_tenant(tenant_id):
        sync_tenant(get_tenant(tenant_id))


def _update(tenant_id: str, changes: dict[str, Any]) -> Tenant:
    result = master_db().tenants.update_one({"_id": validate_tenant_id(tenant_id)}, {"$set": changes})
    if result.matched_count == 0:
        raise UnknownTenant(f"Tenant {tenant_id!r} does not exist.", tenant_id=tenant_id)
    tenant = get_tenant(tenant_id)
    sync_tenant(tenant)
    return tenant


def sync_tenant(tenant: Tenant) -> None:
    get_queues().sync_tenant(
        tenant.tenant_id, tenant.plan, tenant.status, get_settings().fleet.default_tenant_max_in_flight
    )


def _tenant_from(doc: dict[str, Any]) -> Tenant:
    doc = dict(doc)
    tenant_id = doc.pop("_id")
    if "plan" in doc:
        doc["plan"] = _stored_plan(tenant_id, doc["plan"])
    return Tenant(tenant_id=tenant_id, **doc)


def _stored_plan(tenant_id: str, raw: Any) -> Plan:
    """The plan as stored, or, where it was stored before plans were bounded (1e308 dollars, 2**62 tokens),
    brought within the bounds: a fleet must start, and serve the tenant, on the data it has."""
    try:
        return Plan.model_validate(raw)
    except ValidationError:
        plan, fields = Plan.clamped(raw if isinstance(raw, Mapping) else {})
        _warn_out_of_bounds(tenant_id, tuple(fields))
        return plan


@lru_cache(maxsize=1024)
def _warn_out_of_bounds(tenant_id: str, fields: tuple[str, ...]) -> None:
    """Once per process and tenant: the plan is read on every job the tenant submits."""
    get_logger().warning(
        "tenant.plan_out_of_bounds", tenant_id=tenant_id, fields=list(fields),
        hint="The stored plan is served within its bounds; set it anew (PUT /v1/tenants/{id}/plan or "
        "`tenantq tenants plan`) to store it so.")


# --- agent configuration ---------------------------------------------------------------------------------

_cache_lock = threading.Lock()
_agent_cache: TTLCache[tuple[str, str | None], AgentConfig] | None = None


def _cache() -> TTLCache[tuple[str, str | None], AgentConfig]:
    global _agent_cache
    if _agent_cache is None:
        fleet = get_settings().fleet
        _agent_cache = TTLCache(maxsize=fleet.agent_cache_size, ttl=fleet.agent_cache_ttl_s)
    return _agent_cache


def clear_agent_cache() -> None:
    with _cache_lock:
        _cache().clear()


def forget_agents(tenant_id: str) -> None:
    """Drop this process's cached agents of a tenant (its overrides or one of its instances changed)."""
    with _cache_lock:
        for key in [k for k in _cache() if k[0] == tenant_id]:
            _cache().pop(key, None)


def agent_config(tenant_id: str, instance_id: str | None = None) -> AgentConfig:
    """The agent a job runs with: the instance's, or (instance_id None) the tenant's own agent."""
    key = (tenant_id, instance_id)
    with _cache_lock:
        cached = _cache().get(key)
    if cached is not None:
        return cached
    config = resolve_agent(get_tenant(tenant_id), load_instance(tenant_id, instance_id) if instance_id else None)
    with _cache_lock:
        _cache()[key] = config
    return config


def load_instance(tenant_id: str, instance_id: str) -> AgentInstance:
    doc = tenant_db(tenant_id).agent_instances.find_one({"_id": instance_id})
    if doc is None:
        raise NotFound(f"No agent instance {instance_id!r} in project {tenant_id!r}.", tenant_id=tenant_id,
                       entity="agent_instance", entity_id=instance_id)
    return AgentInstance.model_validate({**doc, "instance_id": doc["_id"]})


def resolve_agent(tenant: Tenant, instance: AgentInstance | None = None) -> AgentConfig:
    """Master template, then the tenant's overrides, then the instance's custom settings; model names resolve
    through the model configs, and the instance's kind renders the prompt version it pins."""
    db = master_db()
    template_id = instance.template_id if instance else tenant.template_id
    template = db.agent_templates.find_one({"_id": template_id})
    if template is None:
        raise ConfigurationError(f"Agent template {template_id!r} is missing from the master database.",
                                 tenant_id=tenant.tenant_id)
    merged: dict[str, Any] = {k: v for k, v in template.items() if v is not None and k in AgentSettings.model_fields}
    merged.update(tenant.agent.model_dump(exclude_none=True))
    if instance is not None:
        merged.update(instance.custom_settings.overrides())
    model_names = [merged.pop("model", None) or get_settings().default_model()]
    model_names += merged.pop("fallbacks", None) or get_settings().llm.fallback_models
    prompts: dict[str, str] = merged.pop("prompts", None) or {}
    sources: dict[str, str] = {}
    for kind, prompt_name in prompts.items():
        pinned = instance.system_prompt_version if instance is not None and kind == instance.kind else None
        sources[kind] = prompt_sources.source(prompt_name, pinned)
    merged.setdefault("max_tokens", get_settings().llm.max_tokens)
    if instance is not None:
        merged.update(instance_id=instance.instance_id, kind=instance.kind, timeout_s=instance.custom_settings.timeout,
                      variables=instance.system_prompt_variables)
    return AgentConfig(
        tenant_id=tenant.tenant_id, tenant_name=tenant.name or tenant.tenant_id, currency=tenant.currency,
        template_id=template_id, models=[_model(n) for n in model_names],
        prompt_sources=sources, **merged,
    )


def _model(name: str) -> ModelConfig:
    doc = master_db().model_configs.find_one({"_id": name})
    if doc is None:
        return ModelConfig(name=name, model=name)
    doc.pop("_id")
    return ModelConfig(name=name, **doc)


def register_model(config: ModelConfig) -> None:
    # The replacement names its _id: an upsert that takes it from the filter alone is not portable
    # (nx-27017 inserts such a document under a fresh ObjectId, so the route was never found by name).
    doc = {"_id": config.name, **config.model_dump(exclude={"name"}, exclude_none=True)}
    master_db().model_configs.replace_one({"_id": config.name}, doc, upsert=True)
