"""Fixtures over the real things: a private redis-server, the nx-27017 MongoDB wire server, real Celery
workers in their own processes, and the loopback OpenAI-compatible server (the one test double).

Services start once per session on free ports; every test makes its own tenants, so tests run in any order.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="session")
def services(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, str]]:
    from tenantq import services as svc

    data = tmp_path_factory.mktemp("services")
    redis_service = svc.start_redis(data)
    mongo_service = svc.start_mongo(data)
    env = {
        "REDIS_URL": redis_service.url,
        "MONGODB_URL": mongo_service.url,
        "TENANTQ_DATA_DIR": str(data),
        "LITELLM_BACKOFF_INITIAL_S": "0.01",
        "LITELLM_BACKOFF_MAX_S": "0.05",
        "LITELLM_REQUEST_TIMEOUT_S": "10",
        "TENANTQ_DISPATCH_INTERVAL_S": "0.2",
        "TENANTQ_ADMIN_TOKEN": "test-admin-token",
        "LOOPBACK_API_KEY": "sk-loopback-test",
    }
    os.environ.update(env)
    _reset_process_state()
    from tenancy.seed import ensure_defaults

    ensure_defaults()
    yield env
    mongo_service.stop()
    redis_service.stop()


def _reset_process_state() -> None:
    from tenancy import mongo, queues, registry
    from tenantq.settings import get_settings

    get_settings.cache_clear()
    mongo.reset()
    queues.reset_queues()
    registry._agent_cache = None


@pytest.fixture(scope="session")
def loopback() -> Iterator[Any]:
    from providers.loopback import LoopbackServer

    with LoopbackServer() as server:
        yield server


class Worker:
    """A real `celery -A workers.app worker` process."""

    def __init__(self, env: dict[str, str], *, classes: str = "interactive,standard,batch", concurrency: int = 16,
                 name: str | None = None) -> None:
        self.name = name or f"test-{uuid.uuid4().hex[:8]}@localhost"
        queues = ",".join(f"tenantq.{c}" for c in classes.split(","))
        self.log = Path(env["TENANTQ_DATA_DIR"]) / f"{self.name}.log"
        self.process = subprocess.Popen(
            [sys.executable, "-m", "celery", "-A", "workers.app", "worker", "-P", "threads", "-c", str(concurrency),
             "-Q", queues, "-n", self.name, "--without-gossip", "--without-mingle", "-l", "INFO"],
            cwd=ROOT, env={**os.environ, **env}, stdout=self.log.open("wb"), stderr=subprocess.STDOUT,
        )

    def wait_registered(self, timeout: float = 60) -> None:
        from tenancy.queues import get_queues

        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if get_queues().r.hexists("tq:worker:slots", self.name):
                return
            if self.process.poll() is not None:
                break
            time.sleep(0.1)
        raise RuntimeError(f"worker {self.name} did not start:\n{self.log.read_text()[-3000:]}")

    def kill(self) -> None:
        self.process.kill()
        self.process.wait(10)

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(20)
            except subprocess.TimeoutExpired:
                self.kill()


@pytest.fixture(scope="session")
def worker(services: dict[str, str], loopback: Any) -> Iterator[Worker]:
    """One worker serving every class, shared by the end-to-end tests."""
    w = Worker(services, concurrency=32)
    w.wait_registered()
    yield w
    w.stop()


@pytest.fixture
def start_worker(services: dict[str, str]) -> Iterator[Callable[..., Worker]]:
    started: list[Worker] = []

    def start(**kwargs: Any) -> Worker:
        w = Worker(services, **kwargs)
        started.append(w)
        w.wait_registered()
        return w

    yield start
    for w in started:
        w.stop()


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
    from fastapi.testclient import TestClient

    from ingress.app import create_app

    with TestClient(create_app()) as client:
        yield client


def wait_for(predicate: Callable[[], Any], timeout: float = 30.0, interval: float = 0.1) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(interval)
    raise AssertionError(f"condition not met within {timeout} s")
