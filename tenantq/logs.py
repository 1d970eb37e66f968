"""structlog set-up, with the redaction every log line passes through.

Secrets and raw lead e-mail addresses never reach logs: keys that name secrets are masked whole, and any
e-mail address inside any value becomes a short stable hash, so support can still correlate lines.
"""

from __future__ import annotations

import hashlib
import logging
import re
import sys
from collections.abc import Mapping, MutableMapping
from typing import Any

import structlog

_EMAIL = re.compile(r"[A-Za-z0-9._%+\-]+@[A-Za-z0-9.\-]+\.[A-Za-z]{2,}")
_SECRET_KEY = re.compile(r"(api[_-]?key|authorization|password|secret|token|credential)", re.I)


def mask_email(match: re.Match[str]) -> str:
    digest = hashlib.sha256(match.group(0).lower().encode()).hexdigest()[:10]
    return f"<email:{digest}>"


def redact(value: Any) -> Any:
    if isinstance(value, str):
        return _EMAIL.sub(mask_email, value)
    if isinstance(value, Mapping):
        return {k: "<redacted>" if _SECRET_KEY.search(str(k)) else redact(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [redact(v) for v in value]
    return value


def redaction_processor(_: Any, __: str, event: MutableMapping[str, Any]) -> MutableMapping[str, Any]:
    for key in list(event):
        event[key] = "<redacted>" if _SECRET_KEY.search(key) else redact(event[key])
    return event


class _RedactingFilter(logging.Filter):
    """Third-party libraries log through stdlib logging; their messages get the same redaction."""

    def filter(self, record: logging.LogRecord) -> bool:
        record.msg = redact(record.getMessage())
        record.args = None
        return True


def configure(level: str = "INFO", json: bool = False) -> None:
    renderer: Any = structlog.processors.JSONRenderer() if json else structlog.dev.ConsoleRenderer(colors=False)
    structlog.configure(
        processors=[
            structlog.contextvars.merge_contextvars,
            structlog.processors.add_log_level,
            structlog.processors.TimeStamper(fmt="iso", utc=True),
            redaction_processor,
            structlog.processors.format_exc_info,
            renderer,
        ],
        wrapper_class=structlog.make_filtering_bound_logger(logging.getLevelName(level.upper())),
        logger_factory=structlog.PrintLoggerFactory(sys.stderr),
        cache_logger_on_first_use=True,
    )
    root = logging.getLogger()
    if not any(isinstance(f, _RedactingFilter) for h in root.handlers for f in h.filters):
        for handler in root.handlers:
            handler.addFilter(_RedactingFilter())
    for noisy in ("LiteLLM", "litellm", "httpx", "httpcore", "openai"):
        logging.getLogger(noisy).setLevel(logging.WARNING)


def get_logger(**context: Any) -> Any:
    return structlog.get_logger().bind(**context)
