"""Projects: the orchestration API's name for tenants. A project's database is its tenant database, its
plan is the tenant's plan, and its first API key is issued once at creation, as for any tenant."""

from __future__ import annotations

from typing import Any

from core.errors import NotFound, UnknownTenant
from schemas.orchestration import Page, Project, ProjectCreate
from schemas.tenants import Tenant, TenantCreate
from tenancy import master_audit, pages, references, registry
from tenancy.mongo import master_db

ENTITY = "project"


def create(spec: ProjectCreate, actor: str) -> tuple[Project, str]:
    """Register the project (a tenant) and issue its first key; nothing is written when the template is
    unknown or the id is taken."""
    references.template(spec.template_id)
    tenant, key = registry.create_tenant(TenantCreate(
        tenant_id=spec.project_id, name=spec.project_name, template_id=spec.template_id, plan=spec.plan,
        currency=spec.currency, customer_name=spec.customer_name, description=spec.description,
        created_by=spec.created_by))
    project = get(tenant.tenant_id)  # as stored (times to the millisecond), as every later read shows it
    master_audit.record(actor, "created", ENTITY, project.project_id, None, project)
    return project, key


def get(project_id: str) -> Project:
    try:
        return of_tenant(registry.get_tenant(project_id))
    except UnknownTenant:
        raise NotFound(f"No project {project_id!r}.", entity=ENTITY, entity_id=project_id) from None


def list_projects(limit: int, cursor: str | None) -> Page[Project]:
    docs, next_cursor = pages.by_id(master_db().tenants, {}, limit, cursor)
    return Page(items=[of_tenant(_tenant(d)) for d in docs], next_cursor=next_cursor)


def of_tenant(tenant: Tenant) -> Project:
    return Project(
        project_id=tenant.tenant_id, project_name=tenant.name, customer_name=tenant.customer_name,
        description=tenant.description, created_by=tenant.created_by, template_id=tenant.template_id,
        currency=tenant.currency, plan=tenant.plan, status=tenant.status, created_at=tenant.created_at)


def _tenant(doc: dict[str, Any]) -> Tenant:
    return Tenant.model_validate({**{k: v for k, v in doc.items() if k != "_id"}, "tenant_id": doc["_id"]})
