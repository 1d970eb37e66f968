"""Who is calling: a tenant by its API key, or an operator by the admin token."""

from __future__ import annotations

import hmac
from typing import Annotated

from fastapi import Depends
from fastapi.concurrency import run_in_threadpool
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from core.errors import AuthenticationError
from core.settings import get_settings
from tenancy.apikeys import authenticate

_bearer = HTTPBearer(auto_error=False)
Credentials = Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)]


async def tenant_of(credentials: Credentials) -> str:
    if credentials is None:
        raise AuthenticationError("Missing API key: send 'Authorization: Bearer tq_...'.")
    return await run_in_threadpool(authenticate, credentials.credentials)


async def admin(credentials: Credentials) -> None:
    token = get_settings().fleet.admin_token
    if token is None or credentials is None or not hmac.compare_digest(credentials.credentials, token):
        raise AuthenticationError("Admin endpoints need 'Authorization: Bearer <TENANTQ_ADMIN_TOKEN>'.")


Tenant = Annotated[str, Depends(tenant_of)]
