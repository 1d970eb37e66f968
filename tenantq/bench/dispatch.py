"""`tenantq bench dispatch`: no-op jobs per second and worker start time as the tenant count grows.

tenantq: tenants are created in Redis (`TenantQueues.sync_tenant`), no-op jobs are enqueued round robin over
them (`TenantQueues.enqueue`) before a real worker starts, and the worker's own dispatcher admits them
through the Lua admission path into the shared Celery queue. Plain Celery: one queue per tenant, one worker
consuming all of them, the same jobs. Both run threads pools of the same concurrency, against the same
private redis-server, in the same run.

Figures: start = worker launch to its first finished job (jobs are waiting before it starts); jobs/s = the
finish rate in a --window-second window opening --warmup seconds after the first finish (a tenantq worker
imports LiteLLM in the background when it is ready; plain Celery gets the same warm-up). A measurement stops
when its --jobs are done or its window is over.
"""

from __future__ import annotations

import argparse
import sys
import time
import uuid
from dataclasses import dataclass

from tenantq.bench import (
    create_tenants,
    noop_envelope,
    private_fleet,
    records,
    reset_redis,
    table,
    throughput,
    wait_records,
)
from tenantq.localfleet import LocalFleet, Process

START_TIMEOUT_S = 600


@dataclass(frozen=True)
class Window:
    warmup_s: float
    window_s: float


@dataclass(frozen=True)
class Measurement:
    tenants: int
    start_s: float
    jobs_per_s: float
    jobs: int


def measure_tenantq(fleet: LocalFleet, tenants: int, jobs: int, concurrency: int, window: Window) -> Measurement:
    from tenancy.queues import get_queues

    reset_redis()
    queues = get_queues()
    ids = create_tenants(queues, tenants, "bench")
    key = f"bench:runs:{uuid.uuid4().hex}"
    for k in range(max(jobs, tenants)):  # at least one job per tenant: every tenant is in the ring
        queues.enqueue(noop_envelope(ids[k % tenants], key))
    launched = time.monotonic()
    worker = fleet.start_worker(concurrency=concurrency, wait=False)
    return _measure(worker, key, tenants, jobs, window, launched)


def measure_plain(fleet: LocalFleet, queue_count: int, jobs: int, concurrency: int, window: Window) -> Measurement:
    from tenantq.bench.plain_celery import producer

    reset_redis()
    url = fleet.env["REDIS_URL"]
    names = [f"plain-q{i:05d}" for i in range(queue_count)]
    queues_file = fleet.data_dir / f"plain-queues-{queue_count}.txt"
    queues_file.write_text("\n".join(names))
    key = f"bench:plain-runs:{uuid.uuid4().hex}"
    sender = producer(url)
    with sender.producer_or_acquire() as publisher:
        for k in range(jobs):
            name = names[k % queue_count]
            sender.send_task("plain.noop", args=[key, name, time.time(), 0], queue=name, producer=publisher)
    worker_name = f"plain-{uuid.uuid4().hex[:6]}@bench"
    argv = [sys.executable, "-m", "celery", "-A", "tenantq.bench.plain_celery", "worker", "-P", "threads",
            "-c", str(concurrency), "-n", worker_name, "--without-gossip", "--without-mingle", "-l", "WARNING"]
    env = {**fleet.env, "PLAIN_CELERY_BROKER_URL": url, "PLAIN_CELERY_QUEUES_FILE": str(queues_file)}
    launched = time.monotonic()
    worker = Process(worker_name, argv, env, fleet.log_dir)
    fleet.processes.append(worker)
    return _measure(worker, key, queue_count, jobs, window, launched)


def _measure(worker: Process, key: str, tenants: int, jobs: int, window: Window, launched: float) -> Measurement:
    try:
        if wait_records(key, 1, START_TIMEOUT_S, worker) < 1:
            raise RuntimeError(f"{worker.name} finished no job in {START_TIMEOUT_S} s:\n{worker.log_tail()}")
        start_s = time.monotonic() - launched
        wait_records(key, jobs, window.warmup_s + window.window_s, worker)
        runs = records(key)
    finally:
        worker.stop()
    return Measurement(tenants, start_s, throughput(runs, window.warmup_s, window.window_s), len(runs))


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="tenantq bench dispatch", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--tenants", default="1,1000,10000", help="Tenant counts, comma separated.")
    parser.add_argument("--jobs", type=int, default=6000,
                        help="Jobs per measurement (tenantq enqueues at least one per tenant).")
    parser.add_argument("--warmup", type=float, default=5.0, help="Seconds after the first finish not counted.")
    parser.add_argument("--window", type=float, default=10.0, help="Seconds of finishes counted.")
    parser.add_argument("--concurrency", type=int, default=8, help="Worker threads (both systems).")
    parser.add_argument("--no-plain", action="store_true", help="Skip the plain Celery baseline.")
    args = parser.parse_args(argv)
    counts = [int(c) for c in args.tenants.split(",") if c.strip()]
    window = Window(args.warmup, args.window)

    ours: list[Measurement] = []
    plain: list[Measurement] = []
    with private_fleet() as fleet:
        for count in counts:
            ours.append(measure_tenantq(fleet, count, args.jobs, args.concurrency, window))
            print(f"tenantq      {count:>6} tenants: {ours[-1].jobs_per_s:7.1f} jobs/s, start "
                  f"{ours[-1].start_s:5.1f} s ({ours[-1].jobs} jobs)", flush=True)
        if not args.no_plain:
            for count in counts:
                plain.append(measure_plain(fleet, count, args.jobs, args.concurrency, window))
                print(f"plain celery {count:>6} queues:  {plain[-1].jobs_per_s:7.1f} tasks/s, start "
                      f"{plain[-1].start_s:5.1f} s ({plain[-1].jobs} jobs)", flush=True)

    headers = ["tenants", "tenantq jobs/s", "tenantq start s", "plain celery tasks/s", "plain start s"]
    rows = []
    for i, m in enumerate(ours):
        p = plain[i] if plain else None
        rows.append([str(m.tenants), f"{m.jobs_per_s:.1f}", f"{m.start_s:.1f}",
                     f"{p.jobs_per_s:.1f}" if p else "-", f"{p.start_s:.1f}" if p else "-"])
    print()
    print(f"no-op jobs, threads pool, concurrency {args.concurrency}, one worker process")
    print(table(headers, rows))
    base = ours[0].jobs_per_s
    for m in ours[1:]:
        print(f"tenantq throughput at {m.tenants} tenants / at {ours[0].tenants}: {m.jobs_per_s / base:.2f}")
    if plain:
        for m in plain[1:]:
            print(f"plain celery throughput at {m.tenants} queues / at {plain[0].tenants}: "
                  f"{m.jobs_per_s / plain[0].jobs_per_s:.2f}")


if __name__ == "__main__":
    main()
