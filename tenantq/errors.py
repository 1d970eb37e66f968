"""The one error tree of tenantq.

Every error carries structured context (tenant_id, job_id, provider, server, tool, ...) so that logs and API
answers stay structured, a stable `code` for machines, and a message that says what happened and what to do.
`http_status` is what the ingress answers when the error reaches it.
"""

from __future__ import annotations

from typing import Any, ClassVar


class TenantqError(Exception):
    code: ClassVar[str] = "tenantq_error"
    http_status: ClassVar[int] = 500
    transient: ClassVar[bool] = False
    """True for what waiting can fix (an outage): a job that meets it goes back to its queue, not to failed."""

    def __init__(self, message: str, **context: Any) -> None:
        super().__init__(message)
        self.message = message
        self.context = {k: v for k, v in context.items() if v is not None}

    def to_dict(self) -> dict[str, Any]:
        return {"code": self.code, "message": self.message, **self.context}


class ConfigurationError(TenantqError):
    code = "configuration_error"


class FleetUnreachable(ConfigurationError):
    """A command cannot reach the fleet's Redis or MongoDB, or the fleet its data dir records has stopped."""

    code = "fleet_unreachable"


# --- tenants, keys, input -------------------------------------------------------------------------------


class TenantError(TenantqError):
    code = "tenant_error"
    http_status = 400


class InvalidTenantId(TenantError):
    code = "invalid_tenant_id"
    http_status = 422


class UnknownTenant(TenantError):
    code = "unknown_tenant"
    http_status = 404


class TenantExists(TenantError):
    code = "tenant_exists"
    http_status = 409


class TenantSuspended(TenantError):
    code = "tenant_suspended"
    http_status = 403


class AuthenticationError(TenantqError):
    code = "unauthenticated"
    http_status = 401


class InvalidJob(TenantqError):
    """A job that can never run as given: fix the input and submit again."""

    code = "invalid_job"
    http_status = 422


class UnknownJobKind(InvalidJob):
    code = "unknown_kind"


class UnknownPriorityClass(InvalidJob):
    code = "unknown_priority_class"


class JobNotFound(TenantqError):
    code = "job_not_found"
    http_status = 404


class InvalidRequest(TenantqError):
    """A query the API cannot answer as asked (a cursor it never gave out, an inverted date range)."""

    code = "invalid_request"
    http_status = 422


class EnqueueFailed(TenantqError):
    code = "enqueue_failed"
    http_status = 503


# --- limits -----------------------------------------------------------------------------------------------


class LimitError(TenantqError):
    code = "limit_error"
    http_status = 429


class BudgetExceeded(LimitError):
    code = "budget_exceeded"
    http_status = 402


class RateLimited(LimitError):
    code = "rate_limited"
    http_status = 429


# --- outside dependencies -----------------------------------------------------------------------------------


class ProviderError(TenantqError):
    code = "provider_error"
    http_status = 502


class ProviderRateLimited(ProviderError):
    code = "provider_rate_limited"
    transient = True


class ProviderTimeout(ProviderError):
    code = "provider_timeout"
    transient = True


class ProviderUnavailable(ProviderError):
    """5xx answers and connection errors: worth another attempt."""

    code = "provider_unavailable"
    transient = True


class CircuitOpen(ProviderUnavailable):
    """The model failed for the whole fleet, so its circuit is open: no call was made. To a job, that is the
    provider being unavailable (same code); logs and the error's context say `circuit: open`."""


class ProviderRejected(ProviderError):
    """The provider refused the request itself (auth, bad request, unknown model): no retry helps."""

    code = "provider_rejected"


class ModelOutputInvalid(ProviderError):
    code = "model_output_invalid"


class DatabaseUnavailable(TenantqError):
    """MongoDB did not answer while a job was being run or recorded: a reason to wait, never to fail a job."""

    code = "database_unavailable"
    http_status = 503
    transient = True


class TemplateError(TenantqError):
    code = "template_error"
    http_status = 422


class ToolError(TenantqError):
    """An MCP tool call failed; the context names the server and the tool."""

    code = "tool_error"
    http_status = 502


class ToolTimeout(ToolError):
    code = "tool_timeout"


class ToolResultInvalid(ToolError):
    code = "tool_result_invalid"


class ToolUnavailable(ToolError):
    code = "tool_unavailable"
