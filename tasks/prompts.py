"""System prompts: tenant-owned Jinja2 templates, rendered in the budgeted sandbox because they are untrusted.

A template that breaks one of the limits (tenancy/sandbox, TENANTQ_TEMPLATE_*) fails its own job with a
`template_error` naming the limit; other tenants' jobs never wait for it.
"""

from __future__ import annotations

from typing import Any

from core.errors import TemplateError, TemplateLimitExceeded
from tenancy.sandbox.limits import Limits
from tenancy.sandbox.render import render as render_within_limits


def render(source: str, variables: dict[str, Any], *, tenant_id: str, name: str, estimate: bool = False) -> str:
    """Render one template. Any template fault (syntax, unknown variable, sandbox refusal, a limit) is a
    TemplateError. The render's CPU time counts against the tenant's share of this process: a worker's render
    waits for it, an estimate's (`estimate`, with the ingress's shorter CPU limit) stops with TemplateTimeout."""
    try:
        return render_within_limits(source, variables, Limits.of(estimate=estimate), owner=tenant_id,
                                    patient=not estimate).strip()
    except TemplateLimitExceeded as exc:
        raise type(exc)(
            f"System prompt {name!r} broke a limit: {exc.message}. Fix the template in the master database.",
            tenant_id=tenant_id, template=name, limit=exc.context.get("limit"),
        ) from exc
    except TemplateError as exc:
        raise TemplateError(
            f"System prompt {name!r} failed to render: {exc.message}. Fix the template in the master database.",
            tenant_id=tenant_id, template=name,
        ) from exc
