"""A real ingress process (uvicorn) on a free port, on the session's Redis and MongoDB, for tests that go
through real HTTP as a client would."""

from __future__ import annotations

import contextlib
import os
import subprocess
import sys
from collections.abc import Iterator

import httpx

from tenantq.services import free_port
from tests.conftest import wait_for

ADMIN = {"Authorization": "Bearer test-admin-token"}


def bearer(key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}


UNTHROTTLED = {"TENANTQ_AUTH_FAILURE_LIMIT": "1000000"}
"""These tests refuse credentials on purpose, many times from one address (127.0.0.1); the throttle has
tests of its own (tests/test_guard.py)."""


@contextlib.contextmanager
def running_ingress(env: dict[str, str]) -> Iterator[httpx.Client]:
    port = free_port()
    process = subprocess.Popen(
        [sys.executable, "-m", "uvicorn", "ingress.app:app", "--host", "127.0.0.1", "--port", str(port),
         "--log-level", "warning"], env={**os.environ, **env, **UNTHROTTLED}, stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL)
    url = f"http://127.0.0.1:{port}"
    try:
        wait_for(lambda: _answers(url), timeout=60, interval=0.2)
        with httpx.Client(base_url=url, timeout=60) as client:
            yield client
    finally:
        process.terminate()
        process.wait(10)


def _answers(url: str) -> bool:
    try:
        return httpx.get(f"{url}/healthz", timeout=1).status_code == 200
    except httpx.HTTPError:
        return False
