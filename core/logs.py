"""structlog set-up, with the redaction (core.redaction) every line a process writes passes through.

Three ways a line is written, one redaction for each:

- structlog events: a processor masks secret-named keys and redacts every value;
- stdlib logging (Celery, kombu, httpx, httpx2, LiteLLM, uvicorn, the MCP SDK, ...): a log record factory
  redacts each record as it is made, so whatever handler a library attached prints it redacted;
- the stderr of a child process (an MCP stdio server): `ChildStderr` reads it line by line into the log;
- anything else written to sys.stdout / sys.stderr (a print, a warning, a thread's traceback), in the
  long-running processes that call `redact_streams`.
"""

from __future__ import annotations

import atexit
import contextlib
import io
import logging
import os
import re
import sys
import threading
from collections.abc import Mapping, MutableMapping
from typing import Any, TextIO

import structlog

from core.redaction import MASK, learn_environment, mask_email, redact, redact_text, secret_name

__all__ = ["ChildStderr", "configure", "get_logger", "mask_email", "redact", "redact_streams"]

QUIET_LIBRARIES = ("LiteLLM", "litellm", "httpx", "httpx2", "httpcore", "httpcore2", "openai", "urllib3")
"""Libraries whose INFO lines are one per request (and carry its URL): WARNING and up only."""


def redaction_processor(_: Any, __: str, event: MutableMapping[str, Any]) -> MutableMapping[str, Any]:
    for key in list(event):
        event[key] = MASK if secret_name(key) else redact(event[key])
    return event


_formatter = logging.Formatter()
_NAMED = re.compile(r"%\((\w+)\)")
_plain_record = logging.getLogRecordFactory()


def _redacted_record(*args: Any, **kwargs: Any) -> logging.LogRecord:
    """A stdlib log record with its message, arguments and traceback redacted at birth.

    Arguments are redacted one by one rather than merged into the message, because some formatters read
    them (uvicorn's access log takes the client, method and path from record.args). A message with
    arguments is the caller's format string, so only a message without any is redacted itself."""
    record = _plain_record(*args, **kwargs)
    if record.args:
        if isinstance(record.args, Mapping):
            # "%(name)s" formats only the values it names: the others are masked, not redacted (Celery's
            # task lines carry the task's arguments, whole, beside the few values they print).
            named = set(_NAMED.findall(record.msg)) if isinstance(record.msg, str) else set()
            record.args = {k: _redacted_arg(v) if not named or k in named else MASK
                           for k, v in record.args.items()}
        else:
            record.args = tuple(_redacted_arg(a) for a in record.args)
    elif isinstance(record.msg, str):
        record.msg = redact_text(record.msg)
    else:
        record.msg = redact_text(str(record.msg))
    if record.exc_info and not record.exc_text:
        # Formatters format the traceback later, from exc_info; formatted here, redacted, they use this text.
        record.exc_text = redact_text(_formatter.formatException(record.exc_info))
    if record.stack_info:
        record.stack_info = redact_text(record.stack_info)
    return record


def _redacted_arg(value: Any) -> Any:
    """The argument itself where it holds nothing to mask (so `%d` and `%r` format it as the caller meant),
    else its redacted text."""
    if value is None or isinstance(value, int | float):
        return value
    text = value if isinstance(value, str) else str(value)
    redacted = redact_text(text)
    if redacted != text:
        return redacted
    if not isinstance(value, str) and (shown := repr(value)) != text and redact_text(shown) != shown:
        return text  # only its repr holds a secret: %r would show it, %s does not
    return value


class _RedactingStream(io.TextIOBase):
    """A text stream that writes whole lines, redacted, to the stream it wraps. A line is written once it
    ends (or at exit): written in pieces, an address split between two of them would pass unseen."""

    def __init__(self, stream: TextIO) -> None:
        self.wrapped = stream
        self._pending = ""
        self._lock = threading.Lock()
        atexit.register(self._drain)

    def write(self, text: str) -> int:
        with self._lock:
            head, newline, self._pending = (self._pending + text).rpartition("\n")
            if newline:
                self.wrapped.write(redact_text(head + newline))
            if len(self._pending) > 65_536:  # a line that never ends is written in pieces
                self.wrapped.write(redact_text(self._pending))
                self._pending = ""
        return len(text)

    def flush(self) -> None:
        self.wrapped.flush()

    def _drain(self) -> None:
        with self._lock, contextlib.suppress(ValueError, OSError):  # the stream may be closed by now
            if self._pending:
                self.wrapped.write(redact_text(self._pending))
                self._pending = ""
            self.wrapped.flush()

    def fileno(self) -> int:
        return self.wrapped.fileno()

    def isatty(self) -> bool:
        return self.wrapped.isatty()

    def writable(self) -> bool:
        return True

    @property
    def encoding(self) -> str:  # type: ignore[override]
        return str(getattr(self.wrapped, "encoding", "utf-8"))

    @property
    def errors(self) -> str | None:  # type: ignore[override]
        return getattr(self.wrapped, "errors", None)


def _unwrapped(stream: TextIO) -> TextIO:
    return stream.wrapped if isinstance(stream, _RedactingStream) else stream


def configure(level: str = "INFO", json: bool = False) -> None:
    """Log through structlog at `level`, every line redacted; the secrets of the environment are learned
    now, so they are masked wherever they appear, whatever their shape."""
    learn_environment()
    renderer: Any = structlog.processors.JSONRenderer() if json else structlog.dev.ConsoleRenderer(colors=False)
    structlog.configure(
        processors=[
            structlog.contextvars.merge_contextvars,
            # Tracebacks become text before redaction, so an exception's message is redacted too.
            structlog.processors.format_exc_info,
            redaction_processor,
            structlog.processors.add_log_level,  # ours, after redaction: nothing in them to mask
            structlog.processors.TimeStamper(fmt="iso", utc=True),
            renderer,
        ],
        wrapper_class=structlog.make_filtering_bound_logger(logging.getLevelName(level.upper())),
        logger_factory=structlog.PrintLoggerFactory(_unwrapped(sys.stderr)),
        cache_logger_on_first_use=True,
    )
    if logging.getLogRecordFactory() is not _redacted_record:
        logging.setLogRecordFactory(_redacted_record)
    for noisy in QUIET_LIBRARIES:
        logging.getLogger(noisy).setLevel(logging.WARNING)


def redact_streams() -> None:
    """Redact what is written to sys.stdout and sys.stderr without a logger (a print, a warning, an uncaught
    exception's traceback): for the fleet's long-running processes, whose output is all log."""
    if not isinstance(sys.stdout, _RedactingStream):
        sys.stdout = _RedactingStream(sys.stdout)
    if not isinstance(sys.stderr, _RedactingStream):
        sys.stderr = _RedactingStream(sys.stderr)


def get_logger(**context: Any) -> Any:
    return structlog.get_logger().bind(**context)


class ChildStderr:
    """A pipe for a child process's stderr, read line by line into this process's log (event `event`,
    with `context`), so what the child writes passes the same redaction as our own lines.

    Give `file` to the child; `close` once the child is started or gone, so the reader ends when the child
    (and whatever inherited its stderr) has closed its end."""

    LINE_CHARS = 8192

    def __init__(self, event: str, **context: Any) -> None:
        read_fd, write_fd = os.pipe()
        self.file: TextIO = os.fdopen(write_fd, "w")
        self._reader = threading.Thread(target=self._relay, args=(read_fd, event, context), daemon=True,
                                        name=f"stderr:{event}")
        self._reader.start()

    def _relay(self, read_fd: int, event: str, context: dict[str, Any]) -> None:
        log = get_logger(**context)
        with os.fdopen(read_fd, "rb") as pipe:
            while line := pipe.readline(self.LINE_CHARS):
                text = line.decode(errors="replace").rstrip()
                if text:
                    log.info(event, line=text)

    def close(self) -> None:
        if not self.file.closed:
            self.file.close()
