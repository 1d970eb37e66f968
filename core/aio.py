"""One asyncio loop per process, on a daemon thread, for the async clients of the outside world.

Celery runs jobs on threads; the model calls (litellm.acompletion) and MCP sessions are asyncio. Running
them all on one long-lived loop lets a worker process hold hundreds of calls in flight, reuse HTTP
connections and keep MCP sessions open across jobs. A forked child gets a fresh loop.
"""

from __future__ import annotations

import asyncio
import os
import threading
from collections.abc import Coroutine
from typing import Any, TypeVar

T = TypeVar("T")

_lock = threading.Lock()
_loop: asyncio.AbstractEventLoop | None = None
_pid: int | None = None


def loop() -> asyncio.AbstractEventLoop:
    """The process's loop, started on first use."""
    global _loop, _pid
    with _lock:
        if _loop is None or _pid != os.getpid() or not _loop.is_running():
            new = asyncio.new_event_loop()
            started = threading.Event()

            def serve() -> None:
                asyncio.set_event_loop(new)
                new.call_soon(started.set)
                new.run_forever()

            threading.Thread(target=serve, name="tenantq-aio", daemon=True).start()
            started.wait()
            _loop, _pid = new, os.getpid()
        return _loop


def run(coro: Coroutine[Any, Any, T], timeout: float | None = None) -> T:
    """Run a coroutine on the process loop from any thread (never from the loop itself) and wait for it."""
    future = asyncio.run_coroutine_threadsafe(coro, loop())
    return future.result(timeout)
