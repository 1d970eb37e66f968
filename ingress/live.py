"""Live job updates: `WS /ws/execution/{id}` and `GET /v1/jobs/{id}/events` (Server-Sent Events).

A watcher gets the job's current state first (read from its tenant's database), then every change as the
fleet publishes it (tenancy/events.py), and the stream closes on the terminal state. It subscribes before it
reads, so no change between the two is missed; a client that reconnects simply starts again from the
current state. Updates come over Redis pub/sub, never by polling the database, so every ingress replica
serves them. Credentials: the tenant's key or the admin token, as a Bearer header or, for browsers, a `token`
query parameter; an admin names the project with `project_id`.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import AsyncGenerator, AsyncIterator
from typing import Annotated, Any

import redis
import redis.asyncio
from fastapi import APIRouter, Query, Request, WebSocket, WebSocketDisconnect
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import StreamingResponse

from core.errors import TenantqError
from core.logs import get_logger
from core.settings import get_settings
from ingress.auth import Caller, bearer_token, identify
from tenancy import jobs
from tenancy.events import TERMINAL, channel

router = APIRouter(tags=["live updates"])
KEEPALIVE_S = 15.0
WATCHER_BACKLOG = 1000
"""Events a slow watcher may fall behind by; past that it is closed and reconnects (current state first)."""


class EventHub:
    """One Redis pub/sub connection per ingress process, shared by all its watchers: a job's channel is
    subscribed while someone watches the job, and each message is handed to every watcher's queue."""

    def __init__(self, url: str, prefix: str) -> None:
        self._redis = redis.asyncio.Redis.from_url(url, decode_responses=True)
        self._pubsub = self._redis.pubsub()
        self._prefix = prefix
        self._watchers: dict[str, set[asyncio.Queue[dict[str, Any] | None]]] = {}
        self._lock = asyncio.Lock()
        self._listener: asyncio.Task[None] | None = None
        self._log = get_logger()

    @contextlib.asynccontextmanager
    async def watch(self, job_id: str) -> AsyncIterator[asyncio.Queue[dict[str, Any] | None]]:
        """A queue of the job's events while the block runs; None in it means the watcher fell behind."""
        queue: asyncio.Queue[dict[str, Any] | None] = asyncio.Queue(WATCHER_BACKLOG)
        name = channel(self._prefix, job_id)
        async with self._lock:
            if name not in self._watchers:
                self._watchers[name] = set()
                await self._pubsub.subscribe(name)
            self._watchers[name].add(queue)
            if self._listener is None or self._listener.done():
                self._listener = asyncio.create_task(self._listen(), name="tenantq-event-hub")
        try:
            yield queue
        finally:
            async with self._lock:
                watchers = self._watchers.get(name, set())
                watchers.discard(queue)
                if not watchers:
                    self._watchers.pop(name, None)
                    with contextlib.suppress(redis.RedisError):
                        await self._pubsub.unsubscribe(name)

    async def _listen(self) -> None:
        while self._watchers:
            try:
                message = await self._pubsub.get_message(ignore_subscribe_messages=True, timeout=1.0)
            except redis.RedisError as error:  # Redis restarting: the client re-subscribes when it is back
                self._log.warning("events.redis_unreachable", error=type(error).__name__)
                await asyncio.sleep(0.5)
                continue
            if message is None or message.get("type") != "message":
                continue
            data = json.loads(message["data"])
            for queue in list(self._watchers.get(message["channel"], ())):
                try:
                    queue.put_nowait(data)
                except asyncio.QueueFull:
                    queue.get_nowait()
                    queue.put_nowait(None)


_hubs: dict[int, EventHub] = {}


def hub() -> EventHub:
    """The process's hub, made on the running loop on first use."""
    loop = id(asyncio.get_running_loop())
    if loop not in _hubs:
        settings = get_settings()
        _hubs[loop] = EventHub(settings.redis_url, settings.redis.key_prefix)
    return _hubs[loop]


async def watcher_tenant(authorization: str | None, token: str | None, project_id: str | None,
                         address: str | None) -> str:
    """The tenant whose job may be watched with these credentials: a tenant's key, or the admin token with
    the project named; failures count against the client address like any other (`ingress.auth.identify`)."""
    secret = bearer_token(authorization.encode("latin-1") if authorization else None)
    secret = secret or (token.encode() if token else None)
    if project_id is not None:
        await run_in_threadpool(identify, Caller.admin, secret, address)
        return project_id
    tenant_id = await run_in_threadpool(identify, Caller.tenant, secret, address)
    assert tenant_id is not None
    return tenant_id


async def current_state(tenant_id: str, job_id: str) -> dict[str, Any]:
    view = await run_in_threadpool(jobs.view, tenant_id, job_id)
    return {"job_id": job_id, "event": "state", "status": view.status.value, "at": None,
            "data": view.model_dump(mode="json")}


async def updates(tenant_id: str, job_id: str) -> AsyncGenerator[dict[str, Any], None]:
    """The job's current state, then its changes until the terminal one, with a keepalive event every
    KEEPALIVE_S of silence; JobNotFound for an unknown job or another tenant's."""
    async with hub().watch(job_id) as queue:
        state = await current_state(tenant_id, job_id)
        yield state
        if state["status"] in TERMINAL:
            return
        while True:
            try:
                event = await asyncio.wait_for(queue.get(), KEEPALIVE_S)
            except TimeoutError:
                yield {"job_id": job_id, "event": "keepalive", "status": None, "at": None, "data": {}}
                continue
            if event is None:  # fell behind: the current state says where the job is now
                event = await current_state(tenant_id, job_id)
            yield event
            if event["status"] in TERMINAL:
                return


@router.websocket("/ws/execution/{execution_id}")
async def execution_socket(websocket: WebSocket, execution_id: str, token: str | None = None,
                           project_id: str | None = None) -> None:
    try:
        tenant_id = await watcher_tenant(websocket.headers.get("authorization"), token, project_id,
                                         websocket.client.host if websocket.client else None)
        stream = updates(tenant_id, execution_id)
        first = await anext(stream)
    except TenantqError as error:
        await websocket.close(code=4401 if error.http_status == 401 else 4404, reason=error.message[:120])
        return
    await websocket.accept()
    closed = asyncio.create_task(_until_closed(websocket))
    try:
        await websocket.send_json(first)
        async for event in stream:
            if closed.done():
                return
            if event["event"] != "keepalive":
                await websocket.send_json(event)
        await websocket.close()
    except (WebSocketDisconnect, RuntimeError):
        return
    finally:
        closed.cancel()
        await stream.aclose()


async def _until_closed(websocket: WebSocket) -> None:
    with contextlib.suppress(WebSocketDisconnect, RuntimeError):
        while True:
            await websocket.receive()


@router.get("/v1/jobs/{job_id}/events", response_class=StreamingResponse, responses={
    200: {"content": {"text/event-stream": {}}, "description": "The current state, then every change."},
    401: {"description": "No valid key or admin token."}, 404: {"description": "No such job for this tenant."}})
async def job_events(request: Request, job_id: str, token: Annotated[str | None, Query()] = None,
                     project_id: Annotated[str | None, Query()] = None) -> StreamingResponse:
    tenant_id = await watcher_tenant(request.headers.get("authorization"), token, project_id,
                                     request.client.host if request.client else None)
    stream = updates(tenant_id, job_id)
    first = await anext(stream)  # an unknown job is a 404 before the stream starts

    async def body() -> AsyncIterator[str]:
        try:
            yield _sse(first)
            async for event in stream:
                yield ": keepalive\n\n" if event["event"] == "keepalive" else _sse(event)
        finally:
            await stream.aclose()

    return StreamingResponse(body(), media_type="text/event-stream",
                             headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"})


def _sse(event: dict[str, Any]) -> str:
    return f"event: {event['event']}\ndata: {json.dumps(event, default=str)}\n\n"

