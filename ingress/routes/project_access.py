"""Who may read a project: the admin token, or that project's own API key.

Another project's key gets 404, as for jobs: a key never learns whether a project it does not hold exists.
Routes without a project in their path (the ERP and dynamic routes) serve the key's project; with the
admin token they name it with `?project_id=`.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Path, Query, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.exceptions import RequestValidationError

from core.errors import UnknownTenant
from ingress.auth import ProjectKey
from ingress.project_auth import key_holder
from tenancy.registry import get_tenant

PROJECT_SCOPE = "tenantq.project_id"
"""Where the request's scope keeps the project once it is known (the deprecated routes' Link needs it)."""


async def _existing(project_id: str) -> str:
    """The project id, once the project is known to exist (422 for an invalid id, 404 for an unknown one)."""
    try:
        await run_in_threadpool(get_tenant, project_id)
    except UnknownTenant:
        raise UnknownTenant(f"Project {project_id!r} does not exist; GET /v1/tenants (admin) lists the projects.",
                            tenant_id=project_id) from None
    return project_id


async def path_project(request: Request, project_id: Annotated[str, Path()], credentials: ProjectKey) -> str:
    key_project = await key_holder(request, credentials)
    if key_project is not None and key_project != project_id:
        raise UnknownTenant(f"Project {project_id!r} does not exist for this key; a key reads its own project "
                            f"only, here {key_project!r}.", tenant_id=project_id)
    request.scope[PROJECT_SCOPE] = await _existing(project_id)
    return project_id


async def key_project(request: Request, credentials: ProjectKey,
                      project_id: Annotated[str | None, Query(description="Admin token only: the project.")] = None,
                      ) -> str:
    key_project = await key_holder(request, credentials)
    if key_project is None:
        if not project_id:
            raise RequestValidationError([{
                "loc": ("query", "project_id"), "type": "missing",
                "msg": "With the admin token, name the project: ?project_id=<project id>."}])
        key_project = await _existing(project_id)
    elif project_id is not None and project_id != key_project:
        raise UnknownTenant(f"Project {project_id!r} does not exist for this key; a key works on its own project "
                            f"only, here {key_project!r}.", tenant_id=project_id)
    request.scope[PROJECT_SCOPE] = key_project
    return key_project


PathProject = Annotated[str, Depends(path_project)]
"""The project named in the path, which the caller may read."""
KeyProject = Annotated[str, Depends(key_project)]
"""The key's project, or the one the admin token names with ?project_id=."""
