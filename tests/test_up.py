"""`tenantq up` as a user runs it, in its own process: on the Redis and MongoDB its environment names, alone
on its data dir, and the commands that reach its fleet, when it is there and when it is not."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import stat
import subprocess
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
import redis

from tenantq.fleetstate import lock_held
from tenantq.services import free_port
from tests.conftest import command_env, tenantq, wait_for

pytestmark = pytest.mark.timeout(240)

UP_REDIS_DB = 15
"""The Redis database of the fleet that `tenantq up` runs on the session's Redis (test_admission counts up
from 1), so its worker never takes the session's jobs."""

TIMED = (
    "import sys, time\n"
    "import pymongo, redis, structlog, tenantq.cli, core.settings\n"
    "started = time.monotonic()\n"
    "try:\n"
    "    tenantq.cli.main(sys.argv[2:], prog_name='tenantq')\n"
    "finally:\n"
    "    open(sys.argv[1], 'w').write(str(time.monotonic() - started))\n"
)


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


def timed_tenantq(env: dict[str, str], tmp_path: Path, *args: str) -> tuple[subprocess.CompletedProcess[str], float]:
    """A command in its own process, and the seconds it took once its modules were imported: imports take
    1-2 s on a loaded machine, which is not what reaching the fleet costs."""
    took = tmp_path / f"took-{uuid.uuid4().hex[:6]}"
    done = subprocess.run([sys.executable, "-c", TIMED, str(took), *args], env=command_env(env),
                          capture_output=True, text=True, timeout=60)
    assert took.exists(), done.stderr
    return done, float(took.read_text())


def one_line(text: str) -> str:
    lines = text.strip().splitlines()
    assert len(lines) == 1, text
    return lines[0]


@contextlib.contextmanager
def serving_up(data_dir: Path, env: dict[str, str] | None = None) -> Iterator[subprocess.Popen[str]]:
    """`tenantq up` on its embedded Redis and nx-27017 (no worker: none is needed here), once it serves;
    stopped with SIGTERM afterwards unless the test ended it. Its output is in `<data dir>-up.out`."""
    out = up_output(data_dir)
    with out.open("w") as sink:
        process = subprocess.Popen([sys.executable, "-m", "tenantq", *up_args(data_dir, "--workers", "0")],
                                   env=env if env is not None else command_env({}), stdout=sink,
                                   stderr=subprocess.STDOUT, text=True)
    try:
        wait_for(lambda: "serving" in out.read_text() or process.poll() is not None, timeout=120, interval=0.2)
        assert process.poll() is None, out.read_text()
        yield process
    finally:
        if process.poll() is None:
            process.send_signal(signal.SIGTERM)
            process.wait(60)


def up_output(data_dir: Path) -> Path:
    return data_dir.parent / f"{data_dir.name}-up.out"


def child_pids(pid: int) -> list[int]:
    tasks = Path(f"/proc/{pid}/task")
    return [int(c) for task in tasks.iterdir() for c in (task / "children").read_text().split()]


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
    assert not (tmp_path / "fleet.json").exists(), "a stopped fleet left its fleet.json"


def test_a_second_up_on_the_same_data_dir_is_refused_in_one_line_naming_the_running_fleet(tmp_path: Path) -> None:
    data_dir = tmp_path / "data"
    with serving_up(data_dir) as first:
        state = (data_dir / "fleet.json").read_text()
        servers = sorted(p.name for p in data_dir.glob("*.log"))
        second = run_up({}, data_dir, "--workers", "0")
        assert second.returncode == 2, second.stdout + second.stderr
        line = one_line(second.stderr)
        assert str(data_dir.resolve()) in line and f"pid {first.pid}" in line, line
        assert (data_dir / "fleet.json").read_text() == state, "the second up rewrote fleet.json"
        assert sorted(p.name for p in data_dir.glob("*.log")) == servers, "the second up started a server"
        shown = tenantq({"TENANTQ_DATA_DIR": str(data_dir)}, "queues")
        assert shown.returncode == 0, shown.stderr
        first.send_signal(signal.SIGTERM)
        assert first.wait(60) == 0
    assert not (data_dir / "fleet.json").exists(), "a stopped fleet left its fleet.json"
    assert not lock_held(data_dir)


def test_services_a_killed_up_left_running_keep_its_data_dir_until_they_stop(tmp_path: Path) -> None:
    data_dir = tmp_path / "data"
    with serving_up(data_dir) as first:
        children = child_pids(first.pid)
        try:
            first.kill()
            first.wait(10)
            refused = run_up({}, data_dir, "--workers", "0")
            assert refused.returncode == 2, refused.stdout + refused.stderr
            line = one_line(refused.stderr)
            assert "redis-server pid" in line and "nx-27017 pid" in line, line
        finally:
            for pid in children:
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, signal.SIGKILL)
    wait_for(lambda: not lock_held(data_dir), timeout=20)
    stale, took = timed_tenantq({"TENANTQ_DATA_DIR": str(data_dir)}, tmp_path, "queues")
    assert stale.returncode == 2, stale.stdout + stale.stderr
    assert "tenantq up" in one_line(stale.stderr) and "Traceback" not in stale.stderr
    assert took < 2, f"{took:.1f} s"
    again = run_up({}, data_dir, "--workers", "0", "--exit-after-demo")
    assert again.returncode == 0, again.stdout + again.stderr
    assert not (data_dir / "fleet.json").exists()


CHAT = {"message": "Is the blue Tiguan still there?", "conversation_id": "c1", "lead_id": "l1"}
DOWN_CASES = [
    ("Redis", ["queues"]),
    ("MongoDB", ["queues"]),
    ("MongoDB", ["tenants", "list"]),
    ("Redis", ["enqueue", "--tenant", "acme", "chat_draft", json.dumps(CHAT)]),
    ("MongoDB", ["result", "--tenant", "acme", "job-1"]),
]


@pytest.mark.parametrize(("down", "command"), DOWN_CASES, ids=[f"{d}-{c[0]}" for d, c in DOWN_CASES])
def test_a_command_that_cannot_reach_the_fleet_says_so_in_one_line_within_2_s(
        services: dict[str, str], tmp_path: Path, down: str, command: list[str]) -> None:
    address = f"127.0.0.1:{free_port()}"  # nothing listens there
    env = {"REDIS_URL": services["REDIS_URL"], "MONGODB_URL": services["MONGODB_URL"]}
    if down == "Redis":
        env["REDIS_URL"], shown = f"redis://ops:s3cret@{address}/0", f"redis://{address}/0"
    else:
        env["MONGODB_URL"] = f"mongodb://ops:s3cret@{address}/?directConnection=true"
        shown = f"mongodb://{address}/?directConnection=true"
    done, took = timed_tenantq(env, tmp_path, *command)
    assert done.returncode == 2, done.stdout + done.stderr
    assert one_line(done.stderr) == f"error: cannot reach {down} at {shown}: is the fleet running? (tenantq up)"
    assert "s3cret" not in done.stdout + done.stderr
    assert took < 2, f"{took:.1f} s"


# --- secrets ------------------------------------------------------------------------------------------------


def without_admin_token() -> dict[str, str]:
    return {k: v for k, v in command_env({}).items() if k != "TENANTQ_ADMIN_TOKEN"}


def test_up_keeps_a_generated_admin_token_in_a_private_file_across_restarts_and_prints_only_its_path(
        tmp_path: Path) -> None:
    data_dir = tmp_path / "data"
    token_file = data_dir / "admin-token"
    tokens = []
    for _ in range(2):
        with serving_up(data_dir, without_admin_token()):
            assert stat.S_IMODE(token_file.stat().st_mode) == 0o600
            token = token_file.read_text().strip()
            tokens.append(token)
            state = json.loads((data_dir / "fleet.json").read_text())
            queues = f"{state['ingress']}/v1/queues"
            assert httpx.get(queues, headers={"Authorization": f"Bearer {token}"}).status_code == 200
            assert httpx.get(queues, headers={"Authorization": "Bearer guessed"}).status_code == 401
            banner = up_output(data_dir).read_text()
            assert f'Bearer $(cat {token_file.resolve()})' in banner, banner
            assert token not in banner
    assert tokens[0] == tokens[1] and len(tokens[0]) >= 32, "the token is generated once and kept"
    logs = "".join(p.read_text(errors="replace") for p in (data_dir / "logs").iterdir())
    assert tokens[0] not in logs


def test_no_banner_or_log_of_up_holds_the_admin_token_a_tenant_key_or_a_lead_address(tmp_path: Path) -> None:
    token = f"operator-{uuid.uuid4().hex}"
    data_dir = tmp_path / "data"
    argv = [sys.executable, "-m", "tenantq", "up", "--data-dir", str(data_dir), "--port", str(free_port()),
            "--flower-port", str(free_port()), "--exit-after-demo", "--concurrency", "8"]
    done = subprocess.run(argv, env={**without_admin_token(), "TENANTQ_ADMIN_TOKEN": token},
                          capture_output=True, text=True, timeout=220)
    banner = done.stdout + done.stderr
    assert done.returncode == 0, banner
    assert (data_dir / "admin-token").read_text().strip() == token, "the operator's token is the one kept"
    assert stat.S_IMODE((data_dir / "admin-token").stat().st_mode) == 0o600
    key_files = sorted((data_dir / "keys").iterdir())
    assert [p.name for p in key_files] == ["autohaus-demo", "sapconsult-demo"], banner
    assert all(stat.S_IMODE(p.stat().st_mode) == 0o600 for p in key_files)
    keys = [p.read_text().strip() for p in key_files]
    assert all(k.startswith("tq_") for k in keys) and f"$(cat {key_files[0].resolve()})" in banner
    logs = {p.name: p.read_text(errors="replace") for p in data_dir.rglob("*.log")}  # the servers' too
    assert {"ingress.log", "flower.log"} <= set(logs) and any(n.startswith("worker-") for n in logs)
    batch = json.loads((Path(__file__).parent.parent / "tenantq" / "demo" / "batch.json").read_text())
    addresses = {job["payload"]["from"] for job in batch["jobs"] if "from" in job["payload"]}
    for secret in (token, *keys):
        assert secret not in banner, "a secret is in the banner"
        assert not [name for name, text in logs.items() if secret in text], "a secret is in a log"
    for address in addresses:
        assert not [name for name, text in logs.items() if address in text], f"{address} is in a log"
