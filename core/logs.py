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
# "token" but not "tokens": total_tokens and prompt_tokens are counts, not secrets.
_SECRET_KEY = re.compile(r"(api[_-]?key|authorization|password|secret|token(?!s)|credential)", re.I)
# Keys that reach a message by accident (an exception text, a URL): tenantq keys, provider-style keys and
# bearer credentials are masked wherever they appear.
_SECRET_VALUE = re.compile(r"\btq_[A-Za-z0-9_\-]{20,}|\bsk[-_][A-Za-z0-9_\-]{8,}|(?<=Bearer )[^\s\"']+", re.I)


def mask_email(match: re.Match[str]) -> str:
    digest = hashlib.sha256(match.group(0).lower().encode()).hexdigest()[:10]
    return f"<email:{digest}>"


def redact(value: Any) -> Any:
    if isinstance(value, str):
        return _SECRET_VALUE.sub("<redacted>", _EMAIL.sub(mask_email, value))
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
        if record.exc_info and not record.exc_text:
            # The handler would format the traceback after this filter; format it here, redacted.
            record.exc_text = redact(_formatter.formatException(record.exc_info))
        elif record.exc_text:
            record.exc_text = redact(record.exc_text)
        if record.stack_info:
            record.stack_info = redact(record.stack_info)
        return True


_formatter = logging.Formatter()


def configure(level: str = "INFO", json: bool = False) -> None:
    renderer: Any = structlog.processors.JSONRenderer() if json else structlog.dev.ConsoleRenderer(colors=False)
    structlog.configure(
        processors=[
            structlog.contextvars.merge_contextvars,
            structlog.processors.add_log_level,
            structlog.processors.TimeStamper(fmt="iso", utc=True),
            # Tracebacks become text before redaction, so an exception's message is redacted too.
            structlog.processors.format_exc_info,
            redaction_processor,
            renderer,
        ],
        wrapper_class=structlog.make_filtering_bound_logger(logging.getLevelName(level.upper())),
        logger_factory=structlog.PrintLoggerFactory(sys.stderr),
        cache_logger_on_first_use=True,
    )
    for handler in logging.getLogger().handlers:  # each handler once, however often configure() runs
        if not any(isinstance(f, _RedactingFilter) for f in handler.filters):
            handler.addFilter(_RedactingFilter())
    for noisy in ("LiteLLM", "litellm", "httpx", "httpcore", "openai"):
        logging.getLogger(noisy).setLevel(logging.WARNING)


def get_logger(**context: Any) -> Any:
    return structlog.get_logger().bind(**context)
