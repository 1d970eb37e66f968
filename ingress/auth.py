"""Who is calling: a tenant by its API key, or an operator by the admin token.

The guard (`ingress/guard.py`) calls `identify` with the request's headers alone, before a byte of its body
is read; the dependencies below hand the routes its verdict and declare the bearer scheme in the OpenAPI
document. Credentials are compared as the bytes that were sent: a token need not be ASCII to be wrong.
"""

from __future__ import annotations

import hmac
import math
from enum import Enum
from typing import Annotated

from fastapi import Depends, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from core.errors import AuthenticationError, AuthenticationThrottled
from core.settings import get_settings
from ingress.throttle import AuthThrottle
from tenancy.apikeys import authenticate
from tenancy.queues import get_queues


class Caller(Enum):
    """Whom a route serves: it decides the credentials and the body limit."""

    tenant = "tenant"
    admin = "admin"
    project = "project"
    """A project's routes: its own key or the admin token (the route checks that the key is the project's)."""
    anyone = "anyone"


def bearer_token(authorization: bytes | None) -> bytes | None:
    """The credentials of an `Authorization: Bearer <token>` header as sent, or None."""
    scheme, _, token = (authorization or b"").strip().partition(b" ")
    token = token.strip()
    return token if scheme.lower() == b"bearer" and token else None


def check_admin(token: bytes | None) -> None:
    expected = get_settings().fleet.admin_token
    if expected is None or token is None or not hmac.compare_digest(token, expected.encode()):
        raise AuthenticationError("Admin endpoints need 'Authorization: Bearer <TENANTQ_ADMIN_TOKEN>'.")


def _is_admin(token: bytes | None) -> bool:
    expected = get_settings().fleet.admin_token
    return expected is not None and token is not None and hmac.compare_digest(token, expected.encode())


def tenant_of_key(token: bytes | None) -> str:
    if token is None:
        raise AuthenticationError("Missing API key: send 'Authorization: Bearer tq_...'.")
    if not token.isascii():  # keys are URL-safe base64: this one was never issued
        raise AuthenticationError("Malformed API key: send 'Authorization: Bearer tq_...'.")
    return authenticate(token.decode("ascii"))


def identify(caller: Caller, token: bytes | None, address: str | None) -> str | None:
    """The tenant id behind a tenant route's key (None for an admin route), or AuthenticationError, counted
    against the client address; an address past its failures is refused before its credentials are read."""
    fleet = get_settings().fleet
    queues = get_queues()
    throttle = AuthThrottle(queues.r, queues.p, fleet.auth_failure_limit, fleet.auth_failure_window_s)
    wait = throttle.retry_after(address)
    if wait is not None:
        raise AuthenticationThrottled(
            f"Too many failed authentications from this address; retry in {math.ceil(wait)} s with valid "
            "credentials.", retry_after_s=round(wait, 3))
    try:
        if caller is Caller.admin:
            check_admin(token)
            return None
        if caller is Caller.project and _is_admin(token):
            return None
        return tenant_of_key(token)
    except AuthenticationError:
        throttle.failed(address)
        raise


_api_key = HTTPBearer(scheme_name="ApiKey", description="A tenant's API key, tq_...", auto_error=False)
_admin_token = HTTPBearer(scheme_name="AdminToken", description="TENANTQ_ADMIN_TOKEN", auto_error=False)
_project_key = HTTPBearer(scheme_name="ProjectKey", auto_error=False,
                          description="The project's API key (tq_...), or TENANTQ_ADMIN_TOKEN")
ApiKey = Annotated[HTTPAuthorizationCredentials | None, Depends(_api_key)]
ProjectKey = Annotated[HTTPAuthorizationCredentials | None, Depends(_project_key)]
AdminToken = Annotated[HTTPAuthorizationCredentials | None, Depends(_admin_token)]


def _sent(credentials: HTTPAuthorizationCredentials | None) -> bytes | None:
    # Starlette decodes headers as Latin-1, so encoding them so gives back the bytes that were sent.
    return None if credentials is None else credentials.credentials.encode("latin-1")


async def tenant_of(request: Request, credentials: ApiKey) -> str:
    tenant_id = getattr(request.state, "tenant_id", None)
    if isinstance(tenant_id, str):  # the guard has authenticated the key already
        return tenant_id
    return await run_in_threadpool(tenant_of_key, _sent(credentials))


async def admin(credentials: AdminToken) -> None:
    check_admin(_sent(credentials))


Tenant = Annotated[str, Depends(tenant_of)]
