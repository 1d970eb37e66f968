"""How an error answers over HTTP: one shape, `{"error": {"code", "message", ...}}`, with the status its
class names, for the routes and for the guard in front of them alike."""

from __future__ import annotations

import math

from fastapi.responses import JSONResponse

from core.errors import TenantqError


def error_response(exc: TenantqError) -> JSONResponse:
    headers: dict[str, str] = {}
    if exc.http_status == 401:
        headers["WWW-Authenticate"] = "Bearer"
    retry_after = exc.context.get("retry_after_s")
    if exc.http_status == 429 and isinstance(retry_after, int | float):
        headers["Retry-After"] = str(max(1, math.ceil(retry_after)))
    return JSONResponse({"error": exc.to_dict()}, status_code=exc.http_status, headers=headers or None)
