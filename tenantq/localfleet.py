"""A whole fleet on one machine, as `tenantq up`, the benchmarks and the tests run it.

Starts what is not configured (a private Redis and the nx-27017 MongoDB server when REDIS_URL / MONGODB_URL
are unset) and real worker, ingress and Flower processes, all on loopback, and stops them in reverse order.
It holds its data dir's lock (tenantq.fleetstate) from before the first server starts until the last stops.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from types import TracebackType

from core.errors import ConfigurationError
from tenantq import services
from tenantq.fleetstate import FleetLock

ALL_CLASSES = ("interactive", "standard", "batch")


def _reset_process_state() -> None:
    """Forget clients built from an earlier environment (settings, Mongo, Redis, agent cache)."""
    from core.settings import get_settings
    from tenancy import mongo, queues, registry

    get_settings.cache_clear()
    mongo.reset()
    queues.reset_queues()
    registry.clear_agent_cache()


class Process:
    """A child process with its output in a log file."""

    def __init__(self, name: str, argv: list[str], env: dict[str, str], log_dir: Path) -> None:
        self.name = name
        self.log = log_dir / f"{name.replace('@', '-')}.log"
        with self.log.open("wb") as out:  # the child keeps its own copy of the descriptor
            self.process = subprocess.Popen(
                argv, env={**os.environ, **env}, stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
            )

    def alive(self) -> bool:
        return self.process.poll() is None

    def log_tail(self, chars: int = 3000) -> str:
        return self.log.read_text(errors="replace")[-chars:] if self.log.exists() else ""

    def kill(self) -> None:
        self.process.kill()
        self.process.wait(10)

    def stop(self, timeout: float = 20) -> None:
        if self.alive():
            self.process.terminate()
            try:
                self.process.wait(timeout)
            except subprocess.TimeoutExpired:
                self.kill()


class LocalFleet:
    """Services plus processes, in one context manager. `env` is what every child runs with; inside it,
    `redis_url` and `mongodb_url` are where the fleet's Redis and MongoDB are, started here or configured."""

    redis_url: str
    mongodb_url: str

    def __init__(self, data_dir: Path, env: dict[str, str] | None = None) -> None:
        self.data_dir = data_dir.resolve()
        self.log_dir = self.data_dir / "logs"
        self.env = dict(env or {})
        self.lock = FleetLock(self.data_dir)
        self._services: list[services.Service] = []
        self.processes: list[Process] = []

    def __enter__(self) -> LocalFleet:
        self.lock.acquire()
        try:
            self.log_dir.mkdir(parents=True, exist_ok=True)
            self.env.setdefault("TENANTQ_DATA_DIR", str(self.data_dir))
            self.redis_url = self._service_url("REDIS_URL", services.start_redis)
            self.mongodb_url = self._service_url("MONGODB_URL", services.start_mongo)
            os.environ.update(self.env)
            _reset_process_state()
            from tenancy.seed import ensure_defaults

            ensure_defaults()
        except BaseException:
            self.__exit__(None, None, None)  # a server that did start is stopped, and the lock released
            raise
        return self

    def _service_url(self, name: str, start: Callable[..., services.Service]) -> str:
        """The configured URL, else that of a server started under the data dir, which holds the lock too."""
        url = self.env.get(name) or os.environ.get(name)
        if not url:
            assert self.lock.fd is not None
            service = start(self.data_dir, keep_fds=(self.lock.fd,))
            self._services.append(service)
            self.lock.add_holder(service.name, service.process.pid)
            url = service.url
        self.env[name] = url
        return url

    def __exit__(self, kind: type[BaseException] | None, error: BaseException | None,
                 tb: TracebackType | None) -> None:
        try:
            for process in reversed(self.processes):
                process.stop()
            for service in reversed(self._services):
                service.stop()
        finally:
            self.lock.release()

    def start_worker(self, *, classes: tuple[str, ...] = ALL_CLASSES, concurrency: int = 128,
                     name: str | None = None, extra_env: dict[str, str] | None = None, wait: bool = True,
                     app: str = "workers.app") -> Process:
        name = name or f"worker-{uuid.uuid4().hex[:6]}@{os.uname().nodename}"
        argv = [sys.executable, "-m", "celery", "-A", app, "worker", "-P", "threads", "-c", str(concurrency),
                "-Q", ",".join(f"tenantq.{c}" for c in classes), "-n", name, "--without-gossip",
                "--without-mingle", "-l", "INFO"]
        process = Process(name, argv, {**self.env, **(extra_env or {})}, self.log_dir)
        self.processes.append(process)
        if wait:
            self.wait_registered(process)
        return process

    def wait_registered(self, process: Process, timeout: float = 120) -> float:
        """Seconds until the worker announced its capacity (its dispatcher is running)."""
        from tenancy.queues import get_queues

        started = time.monotonic()
        while time.monotonic() - started < timeout:
            queues = get_queues()
            if queues.r.hexists(f"{queues.p}:worker:slots", process.name):
                return time.monotonic() - started
            if not process.alive():
                break
            time.sleep(0.05)
        raise ConfigurationError(f"{process.name} did not start:\n{process.log_tail()}")

    def start(self, name: str, argv: list[str]) -> Process:
        process = Process(name, argv, self.env, self.log_dir)
        self.processes.append(process)
        return process
