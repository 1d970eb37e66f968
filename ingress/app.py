"""The HTTP ingress. The tenant comes from the Bearer API key, never from the body.

Every rejection (401, 404, 413, 422, 429, 402, 403) enqueues nothing and says what to do; every TenantqError
becomes a JSON body `{"error": {"code", "message", ...}}` with the status its class names. Credentials are
checked, and bodies bounded, by the guard in front of every route (`ingress/guard.py`) before a route runs.
"""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest
from pydantic import TypeAdapter, ValidationError
from starlette.exceptions import HTTPException as StarletteHTTPException

from core.errors import TenantqError
from core.logs import get_logger
from ingress.admin import router as admin_router
from ingress.auth import Tenant
from ingress.guard import Guard
from ingress.live import router as live_router
from ingress.metrics import FleetCollector
from ingress.responses import error_response
from ingress.routes import router as orchestration_router
from ingress.submit import submit
from schemas.jobs import EnqueueResponse, JobRequest, JobView
from tenancy import jobs
from tenancy.queues import get_queues

_job_request: TypeAdapter[JobRequest] = TypeAdapter(JobRequest)
_job_schema = _job_request.json_schema(ref_template="#/components/schemas/{model}")
_job_definitions = _job_schema.pop("$defs")
"""The job body's schema refers to its parts among the document's components, where `openapi` puts them: a
schema's own `#/$defs/...` would point at the document's root, where no reader (nor the fuzzer) finds them."""


_HTTP_CODES = {400: "invalid_request", 404: "not_found", 405: "method_not_allowed"}
_CLEARER = {"There was an error parsing the body": "The body is not text in UTF-8; nothing was changed."}


def field_errors(exc: ValidationError) -> list[dict[str, Any]]:
    """Where and why a job is invalid. The input is left out: it may be bytes that are not JSON (a body
    that does not parse), it may be large, and echoing it back would copy lead data into client logs."""
    return [dict(e) for e in exc.errors(include_url=False, include_context=False, include_input=False)]


def create_app() -> FastAPI:
    app = FastAPI(title="tenantq ingress", version="1", description=__doc__)

    @app.exception_handler(TenantqError)
    async def _tenantq_error(_: Request, exc: TenantqError) -> JSONResponse:
        return error_response(exc)

    @app.exception_handler(RequestValidationError)
    async def _invalid_request(_: Request, exc: RequestValidationError) -> JSONResponse:
        fields = [{k: v for k, v in e.items() if k in ("loc", "msg", "type")} for e in exc.errors()]
        body = {"error": {"code": "invalid_request", "message": "The request is invalid; nothing was changed.",
                          "fields": fields}}
        return JSONResponse(body, status_code=422)

    @app.exception_handler(StarletteHTTPException)
    async def _http_error(_: Request, exc: StarletteHTTPException) -> JSONResponse:
        """What the framework answers itself (no such route, method or readable body), in the one shape."""
        code = _HTTP_CODES.get(exc.status_code, "http_error")
        message = _CLEARER.get(str(exc.detail), str(exc.detail))
        return JSONResponse({"error": {"code": code, "message": message}}, status_code=exc.status_code,
                            headers=exc.headers)

    @app.exception_handler(Exception)
    async def _unexpected(_: Request, exc: Exception) -> JSONResponse:
        get_logger().error("ingress.unexpected_error", error_type=type(exc).__name__, exc_info=exc)
        body = {"error": {"code": "internal_error", "message": "Unexpected error; it was logged. Retry later."}}
        return JSONResponse(body, status_code=500)

    @app.post("/v1/jobs", status_code=202, response_model=EnqueueResponse, openapi_extra={
        "requestBody": {"required": True, "content": {"application/json": {"schema": _job_schema}}}
    })
    async def create_job(request: Request, tenant_id: Tenant) -> EnqueueResponse:
        try:  # the guard has bounded the body already
            job = _job_request.validate_json(await request.body())
        except ValidationError as exc:
            return JSONResponse(  # type: ignore[return-value]
                {"error": {"code": "invalid_job", "message": "The job is invalid; nothing was enqueued.",
                           "fields": field_errors(exc)}},
                status_code=422,
            )
        return await run_in_threadpool(submit, tenant_id, job)

    @app.get("/v1/jobs/{job_id}", response_model=JobView)
    async def get_job(job_id: str, tenant_id: Tenant) -> JobView:
        return await run_in_threadpool(jobs.view, tenant_id, job_id)

    registry = CollectorRegistry(auto_describe=False)
    registry.register(FleetCollector())

    @app.get("/metrics", include_in_schema=False)
    async def metrics() -> Response:
        body = await run_in_threadpool(generate_latest, registry)
        return Response(body, media_type=CONTENT_TYPE_LATEST)

    @app.get("/healthz")
    async def healthz() -> dict[str, str]:
        await run_in_threadpool(get_queues().r.ping)
        return {"status": "ok"}

    app.include_router(admin_router)
    app.include_router(live_router)
    app.add_middleware(Guard)
    plain_openapi = app.openapi

    def openapi() -> dict[str, Any]:
        document = plain_openapi()
        document.setdefault("components", {}).setdefault("schemas", {}).update(_job_definitions)
        return document

    app.openapi = openapi  # type: ignore[method-assign]
    app.include_router(orchestration_router)
    return app


app = create_app()
