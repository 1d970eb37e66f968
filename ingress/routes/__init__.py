"""The routers of issue 9's read-side views and ERP routes, one module per resource; the app includes them all."""

from __future__ import annotations

from fastapi import APIRouter

from ingress.routes import analytics, audit_log, dynamic, erp, token_usage

routers: list[APIRouter] = [token_usage.router, analytics.router, audit_log.router, erp.router, dynamic.router]
