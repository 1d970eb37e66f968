"""A real ingress process (uvicorn) on a free port, for tests that go through real HTTP."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator, Mapping
from contextlib import contextmanager

import httpx

from tenantq.services import free_port
from tests.conftest import wait_for

UNTHROTTLED = {"TENANTQ_AUTH_FAILURE_LIMIT": "1000000"}
"""These tests refuse credentials on purpose, many times from one address (127.0.0.1); the throttle has
tests of its own (tests/test_guard.py)."""


@contextmanager
def running_ingress(env: Mapping[str, str], log_path: str | None = None) -> Iterator[str]:
    """The ingress's base URL while it runs on the fleet that `env` names; stopped afterwards."""
    port = free_port()
    log = open(log_path, "wb") if log_path else subprocess.DEVNULL  # noqa: SIM115 - closed below
    process = subprocess.Popen(
        [sys.executable, "-m", "uvicorn", "ingress.app:app", "--host", "127.0.0.1", "--port", str(port),
         "--log-level", "warning"], env={**os.environ, **env, **UNTHROTTLED}, stdout=log, stderr=log)
    url = f"http://127.0.0.1:{port}"
    try:
        wait_for(lambda: _answers(url), timeout=60, interval=0.2)
        yield url
    finally:
        process.terminate()
        try:
            process.wait(10)
        except subprocess.TimeoutExpired:  # a request still running (a slow first import): no grace then
            process.kill()
            process.wait(10)
        if log is not subprocess.DEVNULL:
            log.close()


def _answers(url: str) -> bool:
    try:
        return httpx.get(f"{url}/healthz", timeout=1).status_code == 200
    except httpx.HTTPError:
        return False
