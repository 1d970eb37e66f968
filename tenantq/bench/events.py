"""`tenantq bench events`: how soon a watcher learns of a job's changes, pushed against polled.

One run, one private fleet, one ingress process (uvicorn) and one worker, the loopback model answering after
--delay seconds. (a) --subscribers WebSocket clients each watch one job on `/ws/execution/{id}`: the delay of
every change is the time it arrived minus the time the fleet published it (both clocks are this machine's).
(b) --pollers clients each poll `GET /v1/jobs/{id}` every --interval seconds: the delay is the time the
poller first saw its job succeeded minus the job's recorded `finished_at`. Both halves run at once, on the
same ingress, so they share its load.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import sys
import time
from typing import Any

import httpx

from tenantq.bench import percentile, private_fleet, table
from tenantq.services import free_port

MODEL = "bench-events"
CHAT = {"message": "Is the blue estate still available?", "lead_id": "lead-bench"}


def parse(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="tenantq bench events", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--subscribers", type=int, default=1000, help="WebSocket watchers, one job each.")
    parser.add_argument("--pollers", type=int, default=100, help="Pollers, one job each.")
    parser.add_argument("--interval", type=float, default=0.1, help="Seconds between a poller's requests.")
    parser.add_argument("--delay", type=float, default=2.0, help="Seconds the loopback model takes to answer.")
    parser.add_argument("--concurrency", type=int, default=200, help="Worker threads.")
    args = parser.parse_args(argv)
    if min(args.subscribers, args.pollers, args.concurrency) < 1 or args.interval <= 0:
        parser.error("counts must be at least 1 and --interval above 0")
    return args


def main(argv: list[str] | None = None) -> None:
    from providers.loopback import LoopbackServer

    args = parse(argv)
    with private_fleet() as fleet, LoopbackServer() as loopback:
        fleet.env["LOOPBACK_API_KEY"] = "sk-loopback-bench"
        loopback.control(delay_s=args.delay)
        tenant_id, key = _tenant(loopback.api_base)
        fleet.start_worker(concurrency=args.concurrency)
        port = free_port()
        ingress = fleet.start("ingress", [sys.executable, "-m", "uvicorn", "ingress.app:app", "--host",
                                          "127.0.0.1", "--port", str(port), "--log-level", "warning"])
        url = f"http://127.0.0.1:{port}"
        _wait_until_up(url, ingress)
        pushed, polled, polls = asyncio.run(_measure(url, key, tenant_id, args))
    print(f"tenantq bench events: {args.subscribers} WebSocket watchers and {args.pollers} pollers (every "
          f"{args.interval * 1000:.0f} ms) on one ingress process; model answering after {args.delay:g} s; "
          f"{os.cpu_count()} CPUs, load {os.getloadavg()[0]:.1f}")
    rows = [["pushed (WebSocket)", str(len(pushed)), *_ms(pushed)],
            ["polled (GET every 100 ms)" if args.interval == 0.1 else f"polled (GET every {args.interval:g} s)",
             str(len(polled)), *_ms(polled)]]
    print(table(["how", "changes seen", "p50 ms", "p99 ms", "max ms"], rows))
    print(f"polling sent {polls} GET requests for {len(polled)} outcomes; pushing sent none")


def _ms(delays: list[float]) -> list[str]:
    return [f"{percentile(delays, q) * 1000:.1f}" for q in (50, 99, 100)]


def _tenant(api_base: str) -> tuple[str, str]:
    from schemas.agents import AgentSettings, ModelConfig
    from schemas.tenants import TenantCreate
    from tenancy.registry import create_tenant, register_model

    register_model(ModelConfig(name="bench-events", model=f"openai/{MODEL}", api_base=api_base,
                               api_key_env="LOOPBACK_API_KEY"))
    tenant, key = create_tenant(TenantCreate(tenant_id="bench-events", agent=AgentSettings(model="bench-events")))
    return tenant.tenant_id, key


def _wait_until_up(url: str, process: Any) -> None:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            if httpx.get(f"{url}/healthz", timeout=1).status_code == 200:
                return
        except httpx.HTTPError:
            time.sleep(0.2)
        if not process.alive():
            raise RuntimeError(f"the ingress exited:\n{process.log_tail()}")
    raise TimeoutError("the ingress did not answer within 60 s")


async def _measure(url: str, key: str, tenant_id: str, args: argparse.Namespace
                   ) -> tuple[list[float], list[float], int]:
    from tenantq.client import Client

    client = Client(tenant_id=tenant_id)
    total = args.subscribers + args.pollers
    job_ids = await asyncio.to_thread(
        lambda: [client.enqueue("chat_draft", {**CHAT, "conversation_id": f"c{n}"}) for n in range(total)])
    watched, polled_ids = job_ids[:args.subscribers], job_ids[args.subscribers:]
    async with httpx.AsyncClient(base_url=url, headers={"Authorization": f"Bearer {key}"}, timeout=60,
                                 limits=httpx.Limits(max_connections=args.pollers)) as http:
        pushes, polls = await asyncio.gather(
            asyncio.gather(*(_watch(url, key, job_id) for job_id in watched)),
            asyncio.gather(*(_poll(http, job_id, args.interval) for job_id in polled_ids)))
    pushed = [delay for delays in pushes for delay in delays]
    polled = [delay for delay, _ in polls]
    return pushed, polled, sum(count for _, count in polls)


async def _watch(url: str, key: str, job_id: str) -> list[float]:
    import websockets

    delays: list[float] = []
    uri = f"ws://{url.removeprefix('http://')}/ws/execution/{job_id}?token={key}"
    async with websockets.connect(uri, open_timeout=60, max_size=None) as socket:
        async for message in socket:
            arrived = time.time()
            event = json.loads(message)
            if event.get("at"):
                delays.append(arrived - float(event["at"]))
    return delays


async def _poll(http: httpx.AsyncClient, job_id: str, interval: float) -> tuple[float, int]:
    from tenancy.jobs import as_utc

    polls = 0
    while True:
        polls += 1
        body = (await http.get(f"/v1/jobs/{job_id}")).json()
        if body["status"] in ("succeeded", "failed"):
            seen = time.time()
            finished = as_utc(body["finished_at"])
            assert finished is not None
            return seen - finished.timestamp(), polls
        await asyncio.sleep(interval)


if __name__ == "__main__":
    main()
