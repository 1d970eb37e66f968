"""Which fleet a data dir belongs to: `fleet.lock`, held for the fleet's whole life, and `fleet.json`, where
that fleet listens.

One data dir holds one fleet: two redis-servers on one append-only file, or two nx-27017 on the same SQLite
files, corrupt them. A fleet takes an exclusive flock on `<data dir>/fleet.lock` before it starts anything and
hands the locked descriptor on to the servers it starts, so the lock is held while anything that writes the
data dir runs; the kernel drops it when the last of them exits, kill -9 included, so there is never a lock to
clean up by hand. The lock file names the processes that hold it, for the refusal a second fleet gets.

`fleet.json` is written under the lock and removed before the lock is released: one found while nobody holds
the lock was left by a fleet that was killed, and its addresses are no longer true.
"""

from __future__ import annotations

import fcntl
import json
import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from core.errors import ConfigurationError, FleetUnreachable
from core.secretfiles import write_private

LOCK_FILE = "fleet.lock"
STATE_FILE = "fleet.json"
OWNER = "fleet"


class FleetLock:
    """The exclusive lock of one data dir, for the life of the fleet that holds it."""

    def __init__(self, data_dir: Path) -> None:
        self.data_dir = data_dir
        self.path = data_dir / LOCK_FILE
        self.fd: int | None = None
        self._holders: list[tuple[str, int]] = []

    def acquire(self) -> None:
        """Take the lock, or raise ConfigurationError naming the processes that hold it."""
        self.data_dir.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holders = _parse(os.pread(fd, 4096, 0))
            os.close(fd)
            raise ConfigurationError(_in_use(self.data_dir, holders), data_dir=str(self.data_dir)) from None
        self.fd = fd
        self._holders = []
        self.add_holder(OWNER, os.getpid())

    def add_holder(self, name: str, pid: int) -> None:
        """Name a process that holds the lock through a descriptor it inherited."""
        if self.fd is None:
            raise ConfigurationError(f"{self.path} is not held by this process.")
        self._holders.append((name, pid))
        text = "".join(f"{pid} {name}\n" for name, pid in self._holders).encode()
        os.pwrite(self.fd, text, 0)  # the list only grows: a reader never sees it empty
        os.ftruncate(self.fd, len(text))

    def release(self) -> None:
        """Close this process's descriptor; the lock goes once no server started under it still runs."""
        if self.fd is not None:
            os.close(self.fd)
            self.fd = None


def lock_held(data_dir: Path) -> bool:
    """Whether a fleet holds the lock of data_dir (taking a shared lock for a moment would succeed if not)."""
    try:
        fd = os.open(data_dir / LOCK_FILE, os.O_RDONLY)
    except FileNotFoundError:
        return False
    try:
        fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
    except BlockingIOError:
        return True
    finally:
        os.close(fd)
    return False


@contextmanager
def recorded(data_dir: Path, state: dict[str, str]) -> Iterator[None]:
    """Record where the fleet listens for as long as the block runs; the caller holds the data dir's lock.
    The file is readable by its owner only: the URLs may carry credentials."""
    path = data_dir / STATE_FILE
    write_private(path, json.dumps(state, indent=2))
    try:
        yield
    finally:
        path.unlink(missing_ok=True)


def read_state(data_dir: Path) -> dict[str, str] | None:
    """Where the fleet of data_dir listens; None when none was recorded; FleetUnreachable when its fleet.json
    was left by a fleet that no longer runs."""
    path = data_dir / STATE_FILE
    if not path.exists():
        return None
    if not lock_held(data_dir):
        raise FleetUnreachable(
            f"cannot reach the fleet of {data_dir}: it is not running ({STATE_FILE} is left from a `tenantq up` "
            "that was killed); start it with `tenantq up`", data_dir=str(data_dir),
        )
    recorded: dict[str, str] = json.loads(path.read_text())
    return recorded


def _parse(text: bytes) -> list[tuple[str, int]]:
    holders = []
    for line in text.decode(errors="replace").splitlines():
        pid, _, name = line.partition(" ")
        if pid.isdigit():
            holders.append((name, int(pid)))
    return holders


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _in_use(data_dir: Path, holders: list[tuple[str, int]]) -> str:
    alive = [(name, pid) for name, pid in holders if _alive(pid)]
    owner = next((pid for name, pid in alive if name == OWNER), None)
    servers = [(name, pid) for name, pid in alive if name != OWNER]
    listed = " and ".join(f"{name} pid {pid}" for name, pid in servers)
    if owner is not None:
        also = f" (with {listed})" if servers else ""
        return (f"data dir {data_dir} is in use by the fleet of pid {owner}{also}: stop that fleet (Ctrl-C where "
                f"it runs, or kill {owner}), or pass another --data-dir.")
    if servers:
        return (f"data dir {data_dir} is in use by {listed}, left running by a fleet that was killed: stop them "
                f"(kill {' '.join(str(pid) for _, pid in servers)}), or pass another --data-dir.")
    return f"data dir {data_dir} is in use by another fleet: stop it, or pass another --data-dir."
