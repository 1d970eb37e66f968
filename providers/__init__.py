"""Model calls for tasks: one contract (`ModelRequest` in, `ChatResult` out), LiteLLM behind it.

Importing this package stays cheap: LiteLLM is imported on the first model call (providers.runtime), so
the ingress, the CLI and most tests never pay its seconds and its memory.
"""

from providers.base import (
    ChatResult,
    ModelClient,
    ModelRequest,
    complete,
    default_routes,
    get_client,
    job_metadata,
    set_client,
)

__all__ = [
    "ChatResult",
    "ModelClient",
    "ModelRequest",
    "complete",
    "default_routes",
    "get_client",
    "job_metadata",
    "set_client",
]
