"""`tenantq up`: the whole fleet in the foreground, on its embedded defaults, with a demo batch.

Takes the data dir's lock (one fleet per data dir); starts Redis and the nx-27017 MongoDB server where no URL
is configured, worker processes, the ingress and Flower; records where they listen in `<data dir>/fleet.json`
for the other commands, for as long as it runs; creates the demo tenants on first start; runs the demo batch
and prints its results and token usage; then keeps serving.
"""

from __future__ import annotations

import json
import os
import signal
import sys
import time
from importlib import resources
from pathlib import Path
from typing import Any

import click
import httpx

from core.redaction import remember
from core.secretfiles import ensure_admin_token, keep_tenant_key
from tenantq import fleetstate
from tenantq.localfleet import LocalFleet
from tenantq.reach import public_url


def run_up(*, data_dir: Path, port: int, workers: int, concurrency: int | None, flower_port: int, demo: bool,
           exit_after_demo: bool) -> None:
    from core.logs import configure

    configure("WARNING")
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    env = {"TENANTQ_WORKER_CONCURRENCY": str(concurrency)} if concurrency else {}
    ingress_url, flower_url = f"http://127.0.0.1:{port}", f"http://127.0.0.1:{flower_port}"
    with LocalFleet(data_dir, env) as fleet, fleetstate.recorded(fleet.data_dir, {
        "REDIS_URL": fleet.redis_url, "MONGODB_URL": fleet.mongodb_url, "ingress": ingress_url, "flower": flower_url,
    }):
        # Printed is where the token is, never the token: this output is often kept in a log. The fleet's
        # processes read it from the file (their TENANTQ_DATA_DIR), unless the operator set it for them.
        token_file, token = ensure_admin_token(fleet.data_dir, os.environ.get("TENANTQ_ADMIN_TOKEN"))
        remember(token)
        click.echo(f"redis    {public_url(fleet.redis_url)}\nmongodb  {public_url(fleet.mongodb_url)}")
        _prepare_master_data(fleet)
        for _ in range(workers):
            fleet.start_worker(concurrency=concurrency or 128, wait=False)
        # Started as `tenantq ingress` and `tenantq flower`, so their lines pass the fleet's redaction.
        fleet.start("ingress", [sys.executable, "-m", "tenantq", "ingress", "--host", "127.0.0.1",
                                "--port", str(port)])
        fleet.start("flower", [sys.executable, "-m", "tenantq", "flower", f"--port={flower_port}",
                               "--address=127.0.0.1"])
        for process in fleet.processes:
            if process.name.startswith("worker-"):
                fleet.wait_registered(process)
        _wait_http(f"{ingress_url}/healthz", fleet)
        if demo:
            run_demo(ingress_url, fleet.data_dir)
        click.echo(f"\ningress  {ingress_url}  (API docs {ingress_url}/docs)\nflower   {flower_url}\n"
                   f"logs     {fleet.log_dir}\nadmin    token in {token_file} (readable by you only)\n"
                   f"queues   curl -H \"Authorization: Bearer $(cat {token_file})\" {ingress_url}/v1/queues"
                   "   (or: tenantq queues)")
        if exit_after_demo:
            return
        click.echo("serving; Ctrl-C stops the fleet")
        _serve(fleet)


def _prepare_master_data(fleet: LocalFleet) -> None:
    """Mirror every tenant's plan into Redis (a new Redis knows none) and make the ERP defaults that are
    missing: the bundled ERP server, which the erp-analyst template names (unless an operator registered
    their own "erp" server), its tools, the template and its prompt. So every project's ERP jobs run."""
    from tenancy import erp_defaults
    from tenancy.registry import list_tenants, sync_tenant

    for tenant in list_tenants():
        sync_tenant(tenant)
    erp_defaults.ensure("tenantq up")


def _wait_http(url: str, fleet: LocalFleet, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if httpx.get(url, timeout=2).is_success:
                return
        except httpx.HTTPError:
            pass
        dead = [p for p in fleet.processes if not p.alive()]
        if dead:
            raise click.ClickException(f"{dead[0].name} exited:\n{dead[0].log_tail()}")
        time.sleep(0.2)
    raise click.ClickException(f"{url} did not answer within {timeout:.0f} s")


def _serve(fleet: LocalFleet) -> None:
    try:
        while True:
            dead = [p for p in fleet.processes if not p.alive()]
            if dead:
                raise click.ClickException(f"{dead[0].name} exited; its log ends with:\n{dead[0].log_tail()}")
            time.sleep(1)
    except KeyboardInterrupt:
        click.echo("\nstopping")


# --- the demo ------------------------------------------------------------------------------------------------


def run_demo(ingress_url: str, data_dir: Path) -> None:
    from core.errors import UnknownTenant
    from schemas.tenants import TenantCreate
    from tenancy.registry import create_tenant, get_tenant
    from tenantq.client import Client
    from tenantq.reports import print_usage

    batch = json.loads(resources.files("tenantq.demo").joinpath("batch.json").read_text())
    for spec in batch["tenants"]:
        try:
            get_tenant(spec["tenant_id"])
        except UnknownTenant:
            tenant, key = create_tenant(TenantCreate.model_validate(spec))
            key_file = keep_tenant_key(data_dir, tenant.tenant_id, key)
            click.echo(f"created demo tenant {tenant.tenant_id}; its API key is in {key_file}")
            click.echo(f"  try: curl -H \"Authorization: Bearer $(cat {key_file})\" {ingress_url}/v1/jobs/<job id>")
    click.echo(f"\ndemo batch: {len(batch['jobs'])} jobs")
    submitted: list[tuple[str, str, str]] = []
    for job in batch["jobs"]:
        client = Client(tenant_id=job["tenant_id"])
        job_id = client.enqueue(job["kind"], job["payload"], idempotency_key=job.get("idempotency_key"))
        submitted.append((job["tenant_id"], job["kind"], job_id))
    for tenant_id, kind, job_id in submitted:
        view = Client(tenant_id=tenant_id).wait(job_id, timeout=300)
        click.echo(f"\n[{tenant_id}] {kind} {job_id} {view.status.value}")
        click.echo(_summary(kind, view.result, view.error))
    for tenant_id in sorted({t for t, _, _ in submitted}):
        print_usage(tenant_id)


def _summary(kind: str, result: dict[str, Any] | None, error: dict[str, Any] | None) -> str:
    if error or result is None:
        return f"  error: {(error or {}).get('message')}"
    if kind == "email_reply":
        lines = "\n".join("  | " + line for line in str(result["body"]).splitlines()[:8])
        return f"  {result['subject']}\n{lines}"
    if kind == "chat_draft":
        return f"  reply: {result['reply']}\n  quick replies: {' / '.join(result['quick_replies'])}"
    narrative = result.get("narrative", {})
    totals = result.get("totals", {})
    return str(f"  findings: {totals.get('findings')}  at stake: {totals.get('amount', 0):,.2f} "
               f"{totals.get('currency', '')}  in {result['timings']['total_ms'] / 1000:.1f} s\n"
               f"  summary: {narrative.get('summary', '')}")
