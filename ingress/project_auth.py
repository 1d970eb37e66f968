"""Who may use a project's routes: the admin token (any project that exists) or that project's own API key.

Another project's key gets 404, as for jobs: a caller learns nothing of projects that are not its own.
"""

from __future__ import annotations

import hmac
from dataclasses import dataclass
from typing import Annotated

from fastapi import Depends
from fastapi.concurrency import run_in_threadpool

from ingress.auth import Credentials
from tenancy import projects
from tenancy.apikeys import authenticate
from tenantq.errors import AuthenticationError, NotFound
from tenantq.settings import get_settings

ADMIN_ACTOR = "admin"


@dataclass(frozen=True)
class Caller:
    project_id: str
    actor: str
    """Who the audit log names: `admin`, or `project:<id>` for the project's key."""


async def project_caller(project_id: str, credentials: Credentials) -> Caller:
    if credentials is None:
        raise AuthenticationError("Send the project's API key or the admin token: 'Authorization: Bearer ...'.")
    token = get_settings().fleet.admin_token
    if token is not None and hmac.compare_digest(credentials.credentials.encode(), token.encode()):
        await run_in_threadpool(projects.get, project_id)
        return Caller(project_id, ADMIN_ACTOR)
    tenant_id = await run_in_threadpool(authenticate, credentials.credentials)
    if tenant_id != project_id:
        raise NotFound(f"No project {project_id!r} for this key.", entity="project", entity_id=project_id)
    return Caller(project_id, f"project:{tenant_id}")


ProjectCaller = Annotated[Caller, Depends(project_caller)]
