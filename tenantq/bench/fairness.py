"""`tenantq bench fairness`: how long quiet tenants wait while one tenant floods the fleet.

One tenant enqueues --flood jobs of --work-ms each; once the worker is busy with them, --quiet-tenants
tenants enqueue --quiet-jobs jobs each (a burst per tenant). A job's wait is its start minus its enqueue
time. The quiet tenants' p50/p95 wait is printed with and without the flood, for tenantq (per-tenant queues,
Lua admission, a real worker) and for a single shared FIFO queue (plain Celery, same pool and concurrency),
in the same run. Tenants are created in Redis with `TenantQueues.sync_tenant` and jobs enqueued with
`TenantQueues.enqueue` (no-op jobs that sleep, no database).
"""

from __future__ import annotations

import argparse
import sys
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass

from tenantq.bench import (
    create_tenants,
    noop_envelope,
    percentile,
    private_fleet,
    records,
    reset_redis,
    table,
    wait_records,
)
from tenantq.localfleet import LocalFleet, Process

Send = Callable[[str, str], None]
"""Enqueue one job: (tenant_id, record_to)."""


@dataclass(frozen=True)
class Settings:
    flood: int
    quiet_tenants: int
    quiet_jobs: int
    work_ms: float
    concurrency: int
    settle_s: float


@dataclass(frozen=True)
class Waits:
    system: str
    scenario: str
    waits: list[float]

    def row(self) -> list[str]:
        return [self.system, self.scenario, str(len(self.waits)), f"{percentile(self.waits, 50):.3f}",
                f"{percentile(self.waits, 95):.3f}", f"{max(self.waits):.3f}"]


def quiet_waits(send: Send, quiet: list[str], jobs_each: int, timeout_s: float, worker: Process) -> list[float]:
    key = f"bench:quiet:{uuid.uuid4().hex}"
    for tenant_id in quiet:
        for _ in range(jobs_each):
            send(tenant_id, key)
    expected = len(quiet) * jobs_each
    if wait_records(key, expected, timeout_s, worker) < expected:
        raise RuntimeError(f"the quiet tenants' jobs did not all run within {timeout_s} s")
    return [r.wait_s for r in records(key)]


def flood_then_quiet(send: Send, flood_tenant: str, quiet: list[str], s: Settings, worker: Process) -> list[float]:
    key = f"bench:flood:{uuid.uuid4().hex}"
    for _ in range(s.flood):
        send(flood_tenant, key)
    # The flood is running (every slot taken) before the quiet tenants arrive.
    wait_records(key, 2 * s.concurrency, 60, worker)
    drain_s = s.flood * s.work_ms / 1000 / s.concurrency
    return quiet_waits(send, quiet, s.quiet_jobs, drain_s * 2 + 60, worker)


def run_tenantq(fleet: LocalFleet, s: Settings) -> tuple[Waits, Waits]:
    from tenancy.queues import get_queues

    reset_redis()
    queues = get_queues()
    flood_tenant = create_tenants(queues, 1, "flood")[0]
    quiet = create_tenants(queues, s.quiet_tenants, "quiet")

    def send(tenant_id: str, record_to: str) -> None:
        queues.enqueue(noop_envelope(tenant_id, record_to, s.work_ms))

    worker = fleet.start_worker(concurrency=s.concurrency)
    try:
        time.sleep(s.settle_s)  # the worker imports LiteLLM in the background once it is ready
        alone = quiet_waits(send, quiet, s.quiet_jobs, 120, worker)
        flooded = flood_then_quiet(send, flood_tenant, quiet, s, worker)
    finally:
        worker.stop()
    return Waits("tenantq", "no flood", alone), Waits("tenantq", f"flood of {s.flood}", flooded)


def run_fifo(fleet: LocalFleet, s: Settings) -> tuple[Waits, Waits]:
    from tenantq.bench.plain_celery import producer

    reset_redis()
    url = fleet.env["REDIS_URL"]
    queue = "plain-fifo"
    queues_file = fleet.data_dir / "plain-fifo-queues.txt"
    queues_file.write_text(queue)
    sender = producer(url)

    def send(tenant_id: str, record_to: str) -> None:
        sender.send_task("plain.noop", args=[record_to, tenant_id, time.time(), s.work_ms], queue=queue)

    name = f"plain-fifo-{uuid.uuid4().hex[:6]}@bench"
    argv = [sys.executable, "-m", "celery", "-A", "tenantq.bench.plain_celery", "worker", "-P", "threads",
            "-c", str(s.concurrency), "-n", name, "--without-gossip", "--without-mingle", "-l", "WARNING"]
    env = {**fleet.env, "PLAIN_CELERY_BROKER_URL": url, "PLAIN_CELERY_QUEUES_FILE": str(queues_file)}
    worker = Process(name, argv, env, fleet.log_dir)
    fleet.processes.append(worker)
    try:
        ready = f"bench:ready:{uuid.uuid4().hex}"
        send("warm-up", ready)
        wait_records(ready, 1, 120, worker)
        alone = quiet_waits(send, [f"quiet-{i:05d}" for i in range(s.quiet_tenants)], s.quiet_jobs, 120, worker)
        flooded = flood_then_quiet(send, "flood", [f"quiet-{i:05d}" for i in range(s.quiet_tenants)], s, worker)
    finally:
        worker.stop()
    return Waits("single FIFO queue", "no flood", alone), Waits("single FIFO queue", f"flood of {s.flood}", flooded)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="tenantq bench fairness", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--flood", type=int, default=5000, help="Jobs of the flooding tenant.")
    parser.add_argument("--quiet-tenants", type=int, default=20)
    parser.add_argument("--quiet-jobs", type=int, default=10, help="Jobs of each quiet tenant.")
    parser.add_argument("--work-ms", type=float, default=50, help="Work of every job (a sleep).")
    parser.add_argument("--concurrency", type=int, default=8, help="Worker threads (both systems).")
    parser.add_argument("--settle", type=float, default=8.0,
                        help="Seconds a fresh tenantq worker gets to finish its background imports.")
    args = parser.parse_args(argv)
    s = Settings(args.flood, args.quiet_tenants, args.quiet_jobs, args.work_ms, args.concurrency, args.settle)

    with private_fleet() as fleet:
        ours = run_tenantq(fleet, s)
        print("tenantq done", flush=True)
        fifo = run_fifo(fleet, s)

    print()
    print(f"quiet tenants' wait (start - enqueue), {s.quiet_tenants} tenants x {s.quiet_jobs} jobs of "
          f"{s.work_ms:g} ms; flood: 1 tenant, {s.flood} jobs; one worker, threads pool, concurrency {s.concurrency}")
    print(table(["system", "scenario", "jobs", "p50 s", "p95 s", "max s"], [w.row() for w in (*ours, *fifo)]))
    for alone, flooded in (ours, fifo):
        ratio = percentile(flooded.waits, 95) / percentile(alone.waits, 95)
        print(f"{alone.system}: quiet p95 under the flood / without it = {ratio:.2f}"
              + (" (target <= 1.5)" if alone.system == "tenantq" else ""))


if __name__ == "__main__":
    main()
