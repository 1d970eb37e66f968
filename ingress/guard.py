"""The guard in front of every route (pure ASGI middleware): credentials first, then a bounded body.

For each request it tells from the path whom the route serves (tenants, operators, anyone) and checks the
caller's credentials from the headers alone, counting failures per client address (`ingress/throttle.py`).
Only then does it read the body, counting bytes as they stream in, and it answers 413 as soon as they pass
the route's limit (or at once, when Content-Length says so); the route gets the body only when it is whole
and within the limit. So an oversized upload costs the ingress at most its limit in memory, and an
unauthenticated one not even that: uvicorn stops reading a body that nobody asked for after 64 KiB.
"""

from __future__ import annotations

from fastapi.concurrency import run_in_threadpool
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from core.errors import PayloadTooLarge, TenantqError
from core.settings import get_settings
from ingress.auth import Caller, bearer_token, identify
from ingress.responses import error_response


class _ClientGone(Exception):
    """The client disconnected while its body was being read: there is nobody to answer."""


DEPRECATED_PREFIX = "/api/v1/dynamic/"
"""The deprecated dynamic-agent routes (ingress/routes/dynamic.py) answer `Deprecation: true` even refused."""
TENANT_PATHS = ("/v1/jobs",)
"""The routes of tenants, by path and what lies below it; every other route under /v1/ is an operator's."""


def caller_of(path: str) -> Caller:
    """Whom the route at `path` serves. `tests/test_guard.py` holds this against the credentials each route
    declares in the OpenAPI document, so a new route cannot be guarded as what it is not."""
    if path.startswith("/v1/jobs/") and path.endswith("/events"):
        return Caller.anyone  # live updates take a key or the admin token, also as ?token= (ingress/live.py)
    if any(path == p or path.startswith(p + "/") for p in TENANT_PATHS):
        return Caller.tenant
    if path.startswith("/api/v1/master/"):
        return Caller.admin
    if path.startswith("/api/v1/"):
        return Caller.project
    return Caller.admin if path.startswith("/v1/") else Caller.anyone


class Guard:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        path = _route_path(scope)
        caller = caller_of(path)
        try:
            if caller is not Caller.anyone:
                token = bearer_token(_header(scope, b"authorization"))
                client = scope.get("client")
                tenant_id = await run_in_threadpool(identify, caller, token, client[0] if client else None)
                if tenant_id is not None:  # a state of this request's own: never one that others share
                    scope = {**scope, "state": {**scope.get("state", {}), "tenant_id": tenant_id}}
            body = await read_body(scope, receive, caller)
        except TenantqError as exc:
            response = error_response(exc)
            if path.startswith(DEPRECATED_PREFIX):  # refused here, it still says it is deprecated
                response.headers["Deprecation"] = "true"
            await response(scope, receive, send)
            return
        except _ClientGone:
            return
        await self.app(scope, _replay(body, receive), send)


def body_limit(caller: Caller) -> int:
    fleet = get_settings().fleet
    return fleet.max_body_bytes if caller is Caller.tenant else fleet.admin_max_body_bytes


async def read_body(scope: Scope, receive: Receive, caller: Caller) -> bytes:
    """The request's whole body, or PayloadTooLarge as soon as it is past the caller's limit."""
    limit = body_limit(caller)
    declared = _header(scope, b"content-length")
    if declared is not None and declared.isdigit() and int(declared) > limit:
        raise _too_large(limit, caller)
    chunks: list[bytes] = []
    size = 0
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            raise _ClientGone
        chunk = message.get("body", b"")
        size += len(chunk)
        if size > limit:
            raise _too_large(limit, caller)
        chunks.append(chunk)
        if not message.get("more_body", False):
            return b"".join(chunks)


def _too_large(limit: int, caller: Caller) -> PayloadTooLarge:
    size = f"{limit // 1024} KiB" if limit % 1024 == 0 else f"{limit} bytes"
    outcome = "nothing was enqueued" if caller is Caller.tenant else "nothing was changed"
    return PayloadTooLarge(f"Body over {size}, the most this endpoint takes; {outcome}.", limit_bytes=limit)


def _route_path(scope: Scope) -> str:
    path: str = scope["path"]
    root: str = scope.get("root_path", "")
    return path[len(root):] if root and path.startswith(root) else path


def _header(scope: Scope, name: bytes) -> bytes | None:
    return next((value for key, value in scope["headers"] if key.lower() == name), None)


def _replay(body: bytes, receive: Receive) -> Receive:
    """The body read, as the route's first message; then whatever the server says next (a disconnect)."""
    pending = True

    async def replayed() -> Message:
        nonlocal pending
        if pending:
            pending = False
            return {"type": "http.request", "body": body, "more_body": False}
        return await receive()

    return replayed
