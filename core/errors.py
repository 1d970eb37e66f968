"""The one error tree of tenantq.

Every error carries structured context (tenant_id, job_id, provider, server, tool, ...) so that logs and API
answers stay structured, a stable `code` for machines, and a message that says what happened and what to do.
`http_status` is what the ingress answers when the error reaches it.
"""

from __future__ import annotations

from typing import Any, ClassVar

from core.redaction import redact


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

    def to_record(self) -> dict[str, Any]:
        """The error as a job record keeps it: redacted like a log line, so a provider's words that quote a
        lead's address or a key are stored masked."""
        recorded: dict[str, Any] = redact(self.to_dict())
        return recorded


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


class UnknownTemplate(TenantError):
    """A tenant names an agent template that the master database does not hold; the context lists those
    it does (`templates`)."""

    code = "unknown_template"
    http_status = 422


class AuthenticationError(TenantqError):
    code = "unauthenticated"
    http_status = 401


class PayloadTooLarge(TenantqError):
    """A request body over the limit of its route, refused while it streams in: nothing was read past the
    limit, and nothing was written or enqueued."""

    code = "payload_too_large"
    http_status = 413


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


class NotFound(TenantqError):
    """A project, agent instance, execution or master record named in the path does not exist (or belongs to
    another project); the context names the entity and, where they are few, the ids that do exist."""

    code = "not_found"
    http_status = 404


class UnknownReference(TenantqError):
    """A request body names a template, prompt version, model config, MCP server or instance that does not
    exist: nothing was written; the context names what exists."""

    code = "unknown_reference"
    http_status = 422


class AlreadyExists(TenantqError):
    code = "already_exists"
    http_status = 409


class InvalidRequest(TenantqError):
    """A request that is well-formed but contradicts itself or its path: nothing was changed."""

    code = "invalid_request"
    http_status = 422


class InvalidCursor(TenantqError):
    code = "invalid_cursor"
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


class AuthenticationThrottled(LimitError):
    """A client address failed authentication too often: it is refused, its credentials unchecked, until
    its window ends (`retry_after_s`)."""

    code = "authentication_throttled"
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


class TemplateLimitExceeded(TemplateError):
    """A template broke one of the limits on what a tenant's template may do; `limit` in its context names the
    setting (TENANTQ_TEMPLATE_...). Same code as any template error: to a client, the template is at fault."""


class TemplateTimeout(TemplateLimitExceeded):
    """A render used up its CPU time (TENANTQ_TEMPLATE_RENDER_TIMEOUT_S or _ESTIMATE_TIMEOUT_S), or its tenant's
    share of the process's CPU (TENANTQ_TEMPLATE_CPU_SHARE)."""


class PromptVariableMissing(TemplateError):
    """A system prompt uses variables that an instance (with the run's variables) does not give."""

    code = "prompt_variable_missing"


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
