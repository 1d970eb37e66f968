"""`tenantq up` as a user runs it, in its own process, on the Redis and MongoDB its environment names."""

from __future__ import annotations

import signal
import subprocess
import sys
import uuid
from pathlib import Path

import pytest
import redis

from tenantq.services import free_port
from tests.conftest import command_env

pytestmark = pytest.mark.timeout(240)

UP_REDIS_DB = 15
"""The Redis database of the fleet that `tenantq up` runs on the session's Redis (test_admission counts up
from 1), so its worker never takes the session's jobs."""


def up_args(data_dir: Path, *more: str) -> list[str]:
    return ["up", "--no-demo", "--data-dir", str(data_dir), "--port", str(free_port()),
            "--flower-port", str(free_port()), *more]


def run_up(env: dict[str, str], data_dir: Path, *more: str, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    """`tenantq up` to its end; one that overruns is stopped as Ctrl-C would, so it leaves no server behind."""
    argv = [sys.executable, "-m", "tenantq", *up_args(data_dir, *more)]
    with subprocess.Popen(argv, env=command_env(env), stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                          text=True) as process:
        try:
            out, err = process.communicate(timeout=timeout)
        except subprocess.TimeoutExpired:
            process.send_signal(signal.SIGTERM)
            out, err = process.communicate(timeout=60)
            pytest.fail(f"tenantq up did not end within {timeout:.0f} s:\n{out}{err}")
    return subprocess.CompletedProcess(argv, process.returncode, out, err)


def test_up_runs_the_fleet_on_the_redis_and_mongodb_its_environment_names(services: dict[str, str],
                                                                           tmp_path: Path) -> None:
    redis_url = services["REDIS_URL"].rsplit("/", 1)[0] + f"/{UP_REDIS_DB}"
    master = f"up-{uuid.uuid4().hex[:8]}"
    env = {"REDIS_URL": redis_url, "MONGODB_URL": services["MONGODB_URL"], "MASTER_DATABASE_NAME": master,
           "TENANT_DATABASE_PREFIX": f"{master}-"}
    try:
        done = run_up(env, tmp_path, "--exit-after-demo", "--concurrency", "4", timeout=200)
    finally:
        redis.Redis.from_url(redis_url).flushdb()
    assert done.returncode == 0, done.stdout + done.stderr
    assert f"redis    {redis_url}" in done.stdout
    assert not (tmp_path / "redis").exists() and not (tmp_path / "mongo").exists(), "an embedded service started"
    from tenancy.mongo import client

    assert client()[master].agent_templates.count_documents({}) > 0, "master data went elsewhere"
