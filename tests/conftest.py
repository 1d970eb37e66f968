"""Fixtures over the real things: a private redis-server, the nx-27017 MongoDB wire server, real Celery
workers in their own processes, and the loopback OpenAI-compatible server (the one test double).

Services start once per session on free ports; every test makes its own tenants, so tests run in any order.
"""

from __future__ import annotations

import itertools
import os
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator, Mapping
from typing import Any

import pytest

from tenantq.localfleet import LocalFleet, Process

TEST_ENV = {
    "LITELLM_BACKOFF_INITIAL_S": "0.01",
    "LITELLM_BACKOFF_MAX_S": "0.05",
    "LITELLM_REQUEST_TIMEOUT_S": "10",
    "TENANTQ_DISPATCH_INTERVAL_S": "0.2",
    "TENANTQ_JOB_DEADLINE_S": "5",
    "TENANTQ_ADMIN_TOKEN": "test-admin-token",
    "LOOPBACK_API_KEY": "sk-loopback-test",
    "TQ_PROBE_API_KEY": "quiet-harbor-7391-lantern",
}
"""The environment of the session's workers. TQ_PROBE_API_KEY is a secret of no known shape, which only its
name says is one (tests/test_secrets.py)."""


@pytest.fixture(scope="session")
def fleet(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalFleet]:
    """Private Redis and nx-27017 for the session (an outside REDIS_URL / MONGODB_URL is ignored)."""
    for name in ("REDIS_URL", "MONGODB_URL"):
        os.environ.pop(name, None)
    with LocalFleet(tmp_path_factory.mktemp("fleet"), dict(TEST_ENV)) as local:
        yield local


@pytest.fixture(scope="session")
def services(fleet: LocalFleet) -> dict[str, str]:
    return fleet.env


@pytest.fixture(scope="session")
def loopback() -> Iterator[Any]:
    from providers.loopback import LoopbackServer

    with LoopbackServer() as server:
        yield server


@pytest.fixture(scope="session")
def worker(fleet: LocalFleet, loopback: Any) -> Process:
    """One worker serving every class, shared by the end-to-end tests."""
    return fleet.start_worker(concurrency=32)


@pytest.fixture
def start_worker(fleet: LocalFleet) -> Iterator[Callable[..., Process]]:
    """Workers of one test, stopped after it."""
    started: list[Process] = []

    def start(**kwargs: Any) -> Process:
        process = fleet.start_worker(**kwargs)
        started.append(process)
        return process

    yield start
    for process in started:
        process.stop()


@pytest.fixture
def make_tenant(services: dict[str, str]) -> Callable[..., tuple[str, str]]:
    """Creates a fresh tenant with a unique id; returns (tenant_id, api_key)."""
    from schemas.tenants import TenantCreate
    from tenancy.registry import create_tenant

    def make(prefix: str = "t", **spec: Any) -> tuple[str, str]:
        tenant_id = f"{prefix}-{uuid.uuid4().hex[:10]}"
        tenant, key = create_tenant(TenantCreate(tenant_id=tenant_id, **spec))
        return tenant.tenant_id, key

    return make


@pytest.fixture
def api(services: dict[str, str]) -> Iterator[Any]:
    """The ingress in process. Each test calls from a client address of its own, so the failed
    authentications of one test never throttle another."""
    from fastapi.testclient import TestClient

    from ingress.app import create_app

    with TestClient(create_app(), client=(f"test-{uuid.uuid4().hex[:12]}", 50000)) as client:
        yield client


FLEET_VARIABLES = ("REDIS_URL", "MONGODB_URL", "TENANTQ_DATA_DIR")


def command_env(env: Mapping[str, str]) -> dict[str, str]:
    """The environment of a command on the fleet that `env` names: the session's own REDIS_URL, MONGODB_URL
    and TENANTQ_DATA_DIR do not leak into it."""
    return {**{k: v for k, v in os.environ.items() if k not in FLEET_VARIABLES}, **env}


def tenantq(env: Mapping[str, str], *args: str, timeout: float = 60) -> subprocess.CompletedProcess[str]:
    """Runs the `tenantq` command as a user does, in its own process."""
    return subprocess.run([sys.executable, "-m", "tenantq", *args], env=command_env(env), capture_output=True,
                          text=True, timeout=timeout)


_databases = itertools.count(1)


def private_redis_db() -> int:
    """A Redis database number that no other test of the session uses (0 is the session's own)."""
    db = next(_databases)
    assert db < 15, "Redis has 16 databases; 15 is test_up's"
    return db


def wait_for(predicate: Callable[[], Any], timeout: float = 30.0, interval: float = 0.1) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(interval)
    raise AssertionError(f"condition not met within {timeout} s")
