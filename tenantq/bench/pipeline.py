"""`tenantq bench pipeline`: what the whole job pipeline costs over bare LiteLLM calls.

One run, one private fleet (redis-server, nx-27017), one loopback model server answering after --delay
seconds. (a) tenantq: --jobs email_reply jobs are submitted (the ingress's submit path, from a few producer
threads) to one tenant whose agent routes to the loopback server; ONE worker process with --concurrency
threads runs them: admission, the Celery message, the agent config, the prompt, the LiteLLM call, the
result, usage and audit records. Jobs/s = jobs / (first submit -> last job's finished_at). (b) bare
litellm.acompletion calls per second against the same server, at the same concurrency, from this process.
The ratio is what tenantq keeps of what LiteLLM alone could do; the target is 0.8 or more.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import resource
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from tenantq.bench import private_fleet
from tenantq.localfleet import LocalFleet, Process

MODEL = "bench-pipeline"  # as the loopback server sees it; the bare half calls "bench"
PRODUCERS = 8
TARGET_RATIO = 0.8
EMAIL = {"from": "lead@example.com", "to": "sales@dealer.example", "subject": "Test drive",
         "body": "Hello, can I test drive the new estate on Saturday morning?", "lead_id": "lead-bench"}


@dataclass(frozen=True)
class PipelineRun:
    jobs: int
    succeeded: int
    submit_s: float
    total_s: float
    worker_cpu_s: float | None

    @property
    def jobs_per_s(self) -> float:
        return self.succeeded / self.total_s if self.total_s > 0 else float("nan")


def parse(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="tenantq bench pipeline", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--concurrency", type=int, default=100, help="Worker threads, and bare calls in flight.")
    parser.add_argument("--jobs", type=int, default=600, help="Jobs (and bare calls) to measure.")
    parser.add_argument("--delay", type=float, default=1.0, help="Seconds the loopback server takes to answer.")
    parser.add_argument("--timeout", type=float, default=600.0, help="Give up on the jobs after this long.")
    args = parser.parse_args(argv)
    if args.concurrency < 1 or args.jobs < 1 or args.delay < 0:
        parser.error("--concurrency and --jobs must be at least 1, --delay at least 0")
    return args


def setup_tenant(fleet: LocalFleet, api_base: str) -> str:
    """A model route to the loopback server and a tenant whose agent uses it (no budget: no estimate)."""
    from schemas.agents import AgentSettings, ModelConfig
    from schemas.tenants import TenantCreate
    from tenancy.registry import create_tenant, register_model

    register_model(ModelConfig(name="bench-loopback", model=f"openai/{MODEL}", api_base=api_base,
                               api_key_env="LOOPBACK_API_KEY"))
    tenant, _ = create_tenant(TenantCreate(tenant_id="bench-pipeline", template_id="car-dealer",
                                           agent=AgentSettings(model="bench-loopback")))
    return tenant.tenant_id


def submit_all(tenant_id: str, count: int, tag: str) -> list[str]:
    from pydantic import TypeAdapter

    from ingress.submit import submit
    from schemas.jobs import JobRequest

    adapter: TypeAdapter[JobRequest] = TypeAdapter(JobRequest)

    def one(index: int) -> str:
        payload = {**EMAIL, "message_id": f"<{tag}-{index}@bench>"}
        return submit(tenant_id, adapter.validate_python({"kind": "email_reply", "payload": payload})).job_id

    with ThreadPoolExecutor(PRODUCERS) as pool:
        return list(pool.map(one, range(count)))


def wait_finished(tenant_id: str, job_ids: list[str], timeout_s: float, worker: Process) -> list[datetime]:
    """finished_at of every job, once all have ended. Progress is read from the tenant's job counter in
    Redis, so the waiting adds no load to MongoDB, which the worker is using; MongoDB confirms at the end."""
    from tenancy.jobs import as_utc
    from tenancy.mongo import tenant_db
    from tenancy.queues import get_queues

    executions = tenant_db(tenant_id).executions
    ended = {"_id": {"$in": job_ids}, "status": {"$in": ["succeeded", "failed"]}}
    deadline = time.monotonic() + timeout_s
    checked = time.monotonic()
    while True:
        counted = get_queues().spend(tenant_id).jobs >= _baseline[tenant_id] + len(job_ids)
        if counted or time.monotonic() - checked > 2:
            checked = time.monotonic()
            if executions.count_documents(ended) == len(job_ids):
                break
        if not worker.alive():
            raise RuntimeError(f"{worker.name} died:\n{worker.log_tail()}")
        if time.monotonic() > deadline:
            raise TimeoutError(f"jobs unfinished after {timeout_s:.0f} s:\n{worker.log_tail()}")
        time.sleep(0.05)
    _baseline[tenant_id] += len(job_ids)
    stamps = [as_utc(doc.get("finished_at")) for doc in executions.find({"_id": {"$in": job_ids}})]
    return [at for at in stamps if at is not None]


_baseline: dict[str, int] = {}
"""Jobs each tenant had finished before the current measurement (the Redis counter is monthly)."""


def run_pipeline(tenant_id: str, jobs: int, timeout_s: float, worker: Process, tag: str) -> PipelineRun:
    from tenancy.mongo import tenant_db
    from tenancy.queues import get_queues

    _baseline.setdefault(tenant_id, get_queues().spend(tenant_id).jobs)
    cpu_before = cpu_seconds(worker.process.pid)
    started_wall, started = time.time(), time.monotonic()
    job_ids = submit_all(tenant_id, jobs, tag)
    submit_s = time.monotonic() - started
    finished = wait_finished(tenant_id, job_ids, timeout_s, worker)
    total_s = max(f.timestamp() for f in finished) - started_wall
    cpu_after = cpu_seconds(worker.process.pid)
    succeeded = tenant_db(tenant_id).executions.count_documents({"_id": {"$in": job_ids}, "status": "succeeded"})
    worker_cpu = None if cpu_before is None or cpu_after is None else cpu_after - cpu_before
    return PipelineRun(jobs, succeeded, submit_s, total_s, worker_cpu)


def cpu_seconds(pid: int | None = None) -> float | None:
    """CPU time (user + system) of a process so far: this one when pid is None; None where /proc is missing."""
    if pid is None:
        usage = resource.getrusage(resource.RUSAGE_SELF)
        return usage.ru_utime + usage.ru_stime
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return None
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def main(argv: list[str] | None = None) -> None:
    from providers.bench import bare_litellm_rate
    from providers.loopback import LoopbackServer
    from providers.runtime import litellm_module

    args = parse(argv)
    with private_fleet() as fleet, LoopbackServer() as loopback:
        fleet.env["LOOPBACK_API_KEY"] = "sk-loopback-bench"
        loopback.control(delay_s=args.delay)  # every model: the pipeline's and the bare calls'
        tenant_id = setup_tenant(fleet, loopback.api_base)
        worker = fleet.start_worker(concurrency=args.concurrency)
        # Warm-up: LiteLLM's import, the agent config, connection pools; a tenth of the concurrency.
        run_pipeline(tenant_id, max(1, args.concurrency // 10), args.timeout, worker, "warm")
        pipeline = run_pipeline(tenant_id, args.jobs, args.timeout, worker, "bench")
        worker.stop()
        litellm_module()  # its import is not part of the calls' cost
        bare_cpu = cpu_seconds()
        bare = asyncio.run(bare_litellm_rate(loopback.url, args.concurrency, args.jobs))
        bare_cpu = (cpu_seconds() or 0.0) - (bare_cpu or 0.0)
    ratio = pipeline.jobs_per_s / bare
    worker_ms = f"{pipeline.worker_cpu_s / pipeline.jobs * 1000:.1f}" if pipeline.worker_cpu_s else "?"
    print(f"tenantq bench pipeline: {args.jobs} email_reply jobs, one worker of {args.concurrency} threads, "
          f"loopback answering after {args.delay:g} s; {os.cpu_count()} CPUs, load {os.getloadavg()[0]:.1f}")
    print(f"  pipeline end to end      {pipeline.jobs_per_s:6.1f} jobs/s   ({pipeline.succeeded}/{pipeline.jobs} "
          f"succeeded in {pipeline.total_s:.2f} s; submitting took {pipeline.submit_s:.2f} s; "
          f"worker CPU {worker_ms} ms/job)")
    print(f"  bare litellm.acompletion {bare:6.1f} calls/s  ({args.jobs} calls, {args.concurrency} in flight; "
          f"CPU {bare_cpu / args.jobs * 1000:.1f} ms/call)")
    print(f"  ratio pipeline / bare    {ratio:6.2f}          (target >= {TARGET_RATIO}: "
          f"{'met' if ratio >= TARGET_RATIO else 'NOT met'})")


if __name__ == "__main__":
    main()
