"""Who may use a project's routes: the admin token (any project that exists) or that project's own API key.

Another project's key gets 404, as for jobs: a caller learns nothing of projects that are not its own.
"""

from __future__ import annotations

import hmac
from dataclasses import dataclass
from typing import Annotated

from fastapi import Depends, Request
from fastapi.concurrency import run_in_threadpool

from core.errors import NotFound
from core.settings import get_settings
from ingress.auth import Caller as AuthCaller
from ingress.auth import ProjectKey, identify
from tenancy import projects

ADMIN_ACTOR = "admin"


@dataclass(frozen=True)
class Caller:
    project_id: str
    actor: str
    """Who the audit log names: `admin`, or `project:<id>` for the project's key."""


async def key_holder(request: Request, credentials: ProjectKey) -> str | None:
    """None for the admin token, else the project of the key. Failures count against the client address like
    every other (`ingress.auth.identify`): the guard leaves the /api/v1 routes' credentials to them."""
    token = None if credentials is None else credentials.credentials.encode("latin-1")
    address = request.client.host if request.client else None
    admin = get_settings().fleet.admin_token
    if token is not None and admin is not None and hmac.compare_digest(token, admin.encode()):
        return None
    tenant_id = await run_in_threadpool(identify, AuthCaller.tenant, token, address)
    assert tenant_id is not None
    return tenant_id


async def project_caller(request: Request, project_id: str, credentials: ProjectKey) -> Caller:
    holder = await key_holder(request, credentials)
    if holder is None:
        await run_in_threadpool(projects.get, project_id)
        return Caller(project_id, ADMIN_ACTOR)
    if holder != project_id:
        raise NotFound(f"No project {project_id!r} for this key.", entity="project", entity_id=project_id)
    return Caller(project_id, f"project:{holder}")


ProjectCaller = Annotated[Caller, Depends(project_caller)]
