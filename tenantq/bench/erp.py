"""`tenantq bench erp`: time an ERP analysis of N records through the real stdio MCP server.

It runs the job handler itself (server start, MCP transfer, detectors, report) with a stand-in for the
model, because the figure that matters is the data path, not a model's latency. The first job of a worker
pays for starting the server and generating its data; later jobs reuse the session, so both are printed.
"""

from __future__ import annotations

import json
import os
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from types import SimpleNamespace
from typing import Any

import structlog

from core import aio
from core.settings import OFFLINE_MODEL, McpSettings
from mcp_clients.erp_client import describe
from mcp_clients.pool import McpPool
from mcp_clients.registry import bundled_erp_server
from schemas.agents import AgentConfig, ModelConfig
from schemas.erp import ErpAnalysisPayload, ErpReport
from schemas.jobs import JobEnvelope, JobKind, PriorityClass
from tasks.erp_analysis.handler import handle

TENANT = "bench"


@dataclass
class _BenchContext:
    """A job context whose model writes a one-line narrative at once."""

    currency: str = "EUR"
    log: Any = field(default_factory=lambda: structlog.get_logger("tenantq.bench.erp"))

    @property
    def envelope(self) -> JobEnvelope:
        return JobEnvelope(job_id="bench-erp", tenant_id=TENANT, kind=JobKind.erp_analysis,
                           priority=PriorityClass.batch, payload={}, enqueued_at=datetime.now(UTC))

    @property
    def agent(self) -> AgentConfig:
        return AgentConfig(tenant_id=TENANT, tenant_name="Bench", template_id="erp-analyst", mcp_servers=["erp"],
                           models=[ModelConfig(name="offline", model=OFFLINE_MODEL)], prompt_sources={})

    def render(self, kind: str, **variables: Any) -> str:
        return ""

    def complete(self, messages: list[dict[str, Any]], *, json_schema: dict[str, Any] | None = None,
                 metadata: dict[str, Any] | None = None, max_tokens: int | None = None) -> Any:
        count = len((metadata or {}).get("findings", []))
        return SimpleNamespace(text=json.dumps({"summary": f"{count} findings."}))

    def audit(self, event: str, **data: Any) -> None:
        return None


def run_erp_bench(records: int = 100_000, seed: int = 1) -> None:
    """Print the time per category and in total of an analysis over `records` records."""
    config = bundled_erp_server(records=records, seed=seed, timeout_s=120)
    pool = McpPool(McpSettings(call_timeout_s=120))
    payload = ErpAnalysisPayload(prompt="Where are we losing money?")
    try:
        started = time.perf_counter()
        desc = aio.run(describe(pool, config, TENANT), 180)
        cold = time.perf_counter() - started
        started = time.perf_counter()
        report = ErpReport.model_validate(handle(_BenchContext(), payload, servers=lambda _: [config], pool=pool))
        warm = time.perf_counter() - started
    finally:
        aio.run(pool.aclose(), 30)
    print(f"ERP analysis of {desc.records:,} records (seed {seed}) over stdio MCP, {os.cpu_count()} CPU(s)")
    print(f"  {'server start + data generation':<34}{cold:>8.2f} s   (first job of a worker only)")
    print(f"  {'MCP transfer, ' + str(len(report.coverage.tables)) + ' tables':<34}"
          f"{report.timings.fetch_ms / 1000:>8.2f} s")
    for result in report.categories:
        print(f"  {result.category.value:<34}{result.duration_ms / 1000:>8.3f} s   {result.count:>4} findings  "
              f"{result.amount:>16,.2f} {report.currency}  ({result.records_checked:,} records)")
    print(f"  {'analysis, total':<34}{warm:>8.2f} s   {report.totals.findings} findings")
    print(f"  {'first job of a worker, total':<34}{cold + warm:>8.2f} s")


if __name__ == "__main__":
    run_erp_bench()


def main(argv: list[str] | None = None) -> None:
    import argparse

    parser = argparse.ArgumentParser(prog="tenantq bench erp", description=__doc__)
    parser.add_argument("--records", type=int, default=100_000, help="Records in the synthetic ERP data set.")
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args(argv)
    run_erp_bench(args.records, args.seed)
