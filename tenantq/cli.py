"""The `tenantq` command. Every command imports what it needs when it runs, so `tenantq --help` is instant
(and never imports LiteLLM).

Outside `tenantq up`, commands reach the fleet through REDIS_URL and MONGODB_URL; where those are unset
they use the fleet that `tenantq up` recorded in `<data dir>/fleet.json` while it runs. A command that cannot
reach the fleet says so in one line within about a second (tenantq.reach).
"""

from __future__ import annotations

import functools
import json
import os
import sys
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any, ParamSpec, TypeVar

import click

if TYPE_CHECKING:
    from core.settings import Settings

P = ParamSpec("P")
R = TypeVar("R")


def _connect() -> Settings:
    """Point this process at the running fleet: the environment, else the fleet recorded in the data dir."""
    from core.settings import get_settings
    from tenantq.fleetstate import read_state

    get_settings.cache_clear()
    if not (os.environ.get("REDIS_URL") and os.environ.get("MONGODB_URL")):
        recorded = read_state(get_settings().fleet.data_dir)
        if recorded:
            os.environ.setdefault("REDIS_URL", recorded["REDIS_URL"])
            os.environ.setdefault("MONGODB_URL", recorded["MONGODB_URL"])
            get_settings.cache_clear()
    settings = get_settings()
    settings.redis_url  # noqa: B018  (raises a clear ConfigurationError when unset)
    settings.mongodb_url  # noqa: B018
    from core.logs import configure

    configure(settings.fleet.log_level, settings.fleet.log_json)
    return settings


def _reaches_fleet(command: Callable[P, R]) -> Callable[P, R]:
    """A command that works on the fleet's Redis and MongoDB: it connects and probes both first, and a fleet
    it cannot reach is one line and exit code 2, never a traceback nor a wait of seconds."""

    @functools.wraps(command)
    def run(*args: P.args, **kwargs: P.kwargs) -> R:
        from tenantq.reach import reaching_fleet

        settings = _connect()
        with reaching_fleet(settings.redis_url, settings.mongodb_url):
            return command(*args, **kwargs)

    return run


def _fail(exc: Exception) -> None:
    click.echo(f"error: {exc}", err=True)
    sys.exit(2)


class _Group(click.Group):
    """Turns tenantq's own errors into one readable line and exit code 2."""

    def invoke(self, ctx: click.Context) -> Any:
        from core.errors import TenantqError

        try:
            return super().invoke(ctx)
        except TenantqError as exc:
            _fail(exc)


@click.group(cls=_Group)
@click.version_option(package_name="tenantq")
def main() -> None:
    """tenantq: a multi-tenant worker fleet for LLM jobs."""


@main.command()
@click.option("--no-demo", is_flag=True, help="Do not create demo tenants nor run the demo batch.")
@click.option("--port", default=8000, show_default=True, help="Ingress port.")
@click.option("--workers", default=1, show_default=True, help="Worker processes.")
@click.option("--concurrency", default=None, type=int, help="Jobs in flight per worker (default from settings).")
@click.option("--flower-port", default=5555, show_default=True)
@click.option("--data-dir", default=".tenantq", show_default=True, type=click.Path(path_type=Path))
@click.option("--exit-after-demo", is_flag=True, help="Stop once the demo batch is done (for CI and scripts).")
def up(no_demo: bool, port: int, workers: int, concurrency: int | None, flower_port: int, data_dir: Path,
       exit_after_demo: bool) -> None:
    """Run the whole fleet in the foreground: broker, database, ingress, workers and Flower."""
    from tenantq.up import run_up

    run_up(data_dir=data_dir, port=port, workers=workers, concurrency=concurrency, flower_port=flower_port,
           demo=not no_demo, exit_after_demo=exit_after_demo)


@main.command(context_settings={"ignore_unknown_options": True, "allow_extra_args": True})
@click.option("--classes", default="interactive,standard,batch", show_default=True,
              help="Priority classes this worker serves.")
@click.option("--concurrency", default=None, type=int, help="Jobs in flight (default TENANTQ_WORKER_CONCURRENCY).")
@click.pass_context
def worker(ctx: click.Context, classes: str, concurrency: int | None) -> None:
    """Run a worker: `celery -A workers.app worker` with the queues of the given classes."""
    from schemas.jobs import PriorityClass

    _connect()
    try:
        chosen = [PriorityClass(c.strip()) for c in classes.split(",") if c.strip()]
    except ValueError:
        _fail(ValueError(f"Unknown class in {classes!r}; use {', '.join(c.value for c in PriorityClass)}."))
    from core.settings import get_settings

    argv = ["celery", "-A", "workers.app", "worker", "-P", "threads",
            "-c", str(concurrency or get_settings().fleet.worker_concurrency),
            "-Q", ",".join(f"tenantq.{c.value}" for c in chosen), *ctx.args]
    os.execvp(sys.executable, [sys.executable, "-m", *argv])


@main.command()
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--port", default=8000, show_default=True)
@click.option("--log-level", default="warning", show_default=True,
              help="uvicorn's log level; info logs every request (its path and query redacted).")
def ingress(host: str, port: int, log_level: str) -> None:
    """Serve the HTTP ingress (FastAPI under uvicorn), every log line redacted."""
    import uvicorn

    from core.logs import redact_streams

    _connect()
    redact_streams()
    uvicorn.run("ingress.app:app", host=host, port=port, log_level=log_level)


@main.command(context_settings={"ignore_unknown_options": True, "allow_extra_args": True},
              add_help_option=False)
@click.pass_context
def flower(ctx: click.Context) -> None:
    """Serve Flower (`celery -A workers.app flower ARGS`), its log lines redacted like the fleet's."""
    from celery.bin.celery import main as celery

    from core.logs import redact_streams

    _connect()
    redact_streams()
    sys.argv = ["celery", "-A", "workers.app", "flower", *ctx.args]
    sys.exit(celery())


@main.group()
def tenants() -> None:
    """Create and manage tenants."""


def _plan_options(f: Any) -> Any:
    for option in reversed([
        click.option("--weight", type=int, help="Jobs per round-robin turn (1-100)."),
        click.option("--max-in-flight", type=int, help="Cap on jobs in flight (0: fleet cap only)."),
        click.option("--budget-usd", type=float, help="Monthly budget in USD."),
        click.option("--token-budget", type=int, help="Monthly budget in tokens."),
        click.option("--rpm", type=int, help="Requests per minute."),
        click.option("--tpm", type=int, help="Tokens per minute."),
    ]):
        f = option(f)
    return f


def _plan(base: dict[str, Any], **given: Any) -> Any:
    from pydantic import ValidationError

    from core.errors import InvalidJob
    from schemas.tenants import Plan

    names = {"budget_usd": "monthly_budget_usd", "token_budget": "monthly_token_budget",
             "rpm": "requests_per_minute", "tpm": "tokens_per_minute"}
    changes = {names.get(k, k): v for k, v in given.items() if v is not None}
    try:
        return Plan.model_validate({**base, **changes})
    except ValidationError as exc:
        raise InvalidJob(f"Invalid plan: {exc.errors(include_url=False, include_context=False)}") from exc


@tenants.command("create")
@click.argument("tenant_id")
@click.option("--name", default=None)
@click.option("--template", "template_id", default="default", show_default=True)
@click.option("--currency", default="EUR", show_default=True)
@_plan_options
@_reaches_fleet
def tenants_create(tenant_id: str, name: str | None, template_id: str, currency: str, **plan: Any) -> None:
    """Create a tenant; prints its new API key alone on the last line."""
    from pydantic import ValidationError

    from core.errors import InvalidTenantId
    from schemas.tenants import TenantCreate
    from tenancy.registry import create_tenant
    from tenancy.seed import ensure_defaults

    ensure_defaults()
    try:
        spec = TenantCreate(tenant_id=tenant_id, name=name, template_id=template_id, currency=currency,
                            plan=_plan({}, **plan))
    except ValidationError as exc:
        raise InvalidTenantId(f"Invalid tenant: {exc.errors(include_url=False, include_context=False)}") from exc
    tenant, key = create_tenant(spec)
    click.echo(f"created tenant {tenant.tenant_id} (template {tenant.template_id})")
    click.echo(key)


@tenants.command("list")
@_reaches_fleet
def tenants_list() -> None:
    """List tenants with their status and plan."""
    from tenancy.registry import list_tenants

    for t in list_tenants():
        click.echo(f"{t.tenant_id:32} {t.status.value:10} {t.plan.model_dump_json(exclude_none=True)}")


@tenants.command("plan")
@click.argument("tenant_id")
@_plan_options
@_reaches_fleet
def tenants_plan(tenant_id: str, **plan: Any) -> None:
    """Change a tenant's plan (weight, cap, budgets, rate limits)."""
    from tenancy.registry import get_tenant, update_plan

    tenant = update_plan(tenant_id, _plan(get_tenant(tenant_id).plan.model_dump(), **plan))
    click.echo(tenant.plan.model_dump_json(exclude_none=True))


def _set_status(tenant_id: str, status: str) -> None:
    from schemas.tenants import TenantStatus
    from tenancy.registry import set_status

    click.echo(f"{tenant_id} {set_status(tenant_id, TenantStatus(status)).status.value}")


@tenants.command("suspend")
@click.argument("tenant_id")
@_reaches_fleet
def tenants_suspend(tenant_id: str) -> None:
    """Stop serving a tenant: new jobs are refused, queued ones wait."""
    _set_status(tenant_id, "suspended")


@tenants.command("resume")
@click.argument("tenant_id")
@_reaches_fleet
def tenants_resume(tenant_id: str) -> None:
    """Serve a suspended tenant again, its queued jobs first."""
    _set_status(tenant_id, "active")


@main.group()
def prompts() -> None:
    """Tenant-owned system prompts (Jinja2 templates in the master database)."""


@prompts.command("save")
@click.argument("name")
@click.argument("source", type=click.File("r"))
@_reaches_fleet
def prompts_save(name: str, source: Any) -> None:
    """Save a system prompt from a file ('-': stdin). One that is too long, does not compile in the sandbox
    or holds a huge constant is refused, naming why (the TENANTQ_TEMPLATE_* limit, for a limit)."""
    from tenancy.registry import save_prompt

    save_prompt(name, source.read())
    click.echo(f"saved system prompt {name}")


@main.command()
@click.option("--tenant", "tenant_id", required=True)
@click.argument("kind")
@click.argument("payload")
@click.option("--idempotency-key", default=None)
@click.option("--priority", default=None)
@_reaches_fleet
def enqueue(tenant_id: str, kind: str, payload: str, idempotency_key: str | None, priority: str | None) -> None:
    """Submit a job straight to the fleet; PAYLOAD is JSON (or @file.json). Prints the job id."""
    from tenantq.client import Client

    text = Path(payload[1:]).read_text() if payload.startswith("@") else payload
    try:
        body = json.loads(text)
    except json.JSONDecodeError as exc:
        _fail(ValueError(f"PAYLOAD is not JSON: {exc}"))
    click.echo(Client(tenant_id=tenant_id).enqueue(kind, body, idempotency_key=idempotency_key, priority=priority))


@main.command()
@click.option("--tenant", "tenant_id", required=True)
@click.argument("job_id")
@click.option("--wait", "wait_s", default=0.0, help="Seconds to wait for the job to end.")
@_reaches_fleet
def result(tenant_id: str, job_id: str, wait_s: float) -> None:
    """Print a job's status, result and usage as JSON."""
    from tenantq.client import Client

    client = Client(tenant_id=tenant_id)
    job = client.wait(job_id, wait_s) if wait_s else client.get(job_id)
    click.echo(job.model_dump_json(indent=2))


@main.command()
@click.option("--json", "as_json", is_flag=True)
@_reaches_fleet
def queues(as_json: bool) -> None:
    """Each tenant's backlog, oldest job age, jobs in flight and spend this month."""
    from tenantq.reports import print_queue_report

    print_queue_report(as_json)


BENCHES = ("pipeline", "dispatch", "fairness", "erp", "events")


@main.command(context_settings={"ignore_unknown_options": True, "allow_extra_args": True},
              add_help_option=False)
@click.argument("name", required=False)
@click.pass_context
def bench(ctx: click.Context, name: str | None) -> None:
    """Benchmarks that print figures: pipeline, dispatch, fairness, erp, events (`tenantq bench NAME --help`)."""
    from importlib import import_module

    if name not in BENCHES:
        click.echo(f"usage: tenantq bench {{{','.join(BENCHES)}}} [--help | options]")
        sys.exit(0 if name in (None, "--help", "-h") else 2)
    import_module(f"tenantq.bench.{name}").main(ctx.args)


@main.command("erp-mcp")
@click.option("--tenant", "tenant_id", required=True)
@click.option("--records", default=10_000, show_default=True, help="Records in the synthetic ERP data set.")
@click.option("--seed", default=None, type=int, help="Data seed (default: derived from the tenant id).")
def erp_mcp(tenant_id: str, records: int, seed: int | None) -> None:
    """Serve the bundled synthetic ERP over MCP on stdio."""
    from mcp_clients.erp_server.server import main as serve

    serve(tenant_id, records, seed)
