"""The HTTP ingress. The tenant comes from the Bearer API key, never from the body.

Every rejection (401, 404, 413, 422, 402, 403) enqueues nothing and says what to do; every TenantqError
becomes a JSON body `{"error": {"code", "message", ...}}` with the status its class names.
"""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest
from pydantic import TypeAdapter, ValidationError

from ingress.admin import router as admin_router
from ingress.auth import Tenant
from ingress.live import router as live_router
from ingress.metrics import FleetCollector
from ingress.routes import routers as issue9_routers
from ingress.submit import submit
from schemas.jobs import EnqueueResponse, JobRequest, JobView
from tenancy import jobs
from tenancy.queues import get_queues
from tenantq.errors import InvalidJob, TenantqError
from tenantq.logs import get_logger
from tenantq.settings import get_settings

_job_request: TypeAdapter[JobRequest] = TypeAdapter(JobRequest)


class PayloadTooLarge(InvalidJob):
    code = "payload_too_large"
    http_status = 413

def field_errors(exc: ValidationError) -> list[dict[str, Any]]:
    """Where and why a job is invalid. The input is left out: it may be bytes that are not JSON (a body
    that does not parse), it may be large, and echoing it back would copy lead data into client logs."""
    return [dict(e) for e in exc.errors(include_url=False, include_context=False, include_input=False)]


def create_app() -> FastAPI:
    app = FastAPI(title="tenantq ingress", version="1", description=__doc__)

    @app.exception_handler(TenantqError)
    async def _tenantq_error(_: Request, exc: TenantqError) -> JSONResponse:
        headers = {"WWW-Authenticate": "Bearer"} if exc.http_status == 401 else None
        return JSONResponse({"error": exc.to_dict()}, status_code=exc.http_status, headers=headers)

    @app.exception_handler(RequestValidationError)
    async def _invalid_request(_: Request, exc: RequestValidationError) -> JSONResponse:
        fields = [{k: v for k, v in e.items() if k in ("loc", "msg", "type")} for e in exc.errors()]
        body = {"error": {"code": "invalid_request", "message": "The request is invalid; nothing was changed.",
                          "fields": fields}}
        return JSONResponse(body, status_code=422)

    @app.exception_handler(Exception)
    async def _unexpected(_: Request, exc: Exception) -> JSONResponse:
        get_logger().error("ingress.unexpected_error", error_type=type(exc).__name__, exc_info=exc)
        body = {"error": {"code": "internal_error", "message": "Unexpected error; it was logged. Retry later."}}
        return JSONResponse(body, status_code=500)

    @app.post("/v1/jobs", status_code=202, response_model=EnqueueResponse, openapi_extra={
        "requestBody": {"required": True, "content": {"application/json": {"schema": _job_request.json_schema()}}}
    })
    async def create_job(request: Request, tenant_id: Tenant) -> EnqueueResponse:
        limit = get_settings().fleet.max_body_bytes
        declared = request.headers.get("content-length")
        if declared is not None and declared.isdigit() and int(declared) > limit:
            raise PayloadTooLarge(f"Body over {limit // 1024} KiB; nothing was enqueued.", tenant_id=tenant_id)
        body = await request.body()
        if len(body) > limit:
            raise PayloadTooLarge(f"Body over {limit // 1024} KiB; nothing was enqueued.", tenant_id=tenant_id)
        try:
            job = _job_request.validate_json(body)
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
    for router in issue9_routers:
        app.include_router(router)
    return app


app = create_app()
