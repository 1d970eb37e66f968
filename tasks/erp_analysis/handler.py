"""The erp_analysis job: ERP data over MCP, deterministic findings, a model-written narrative, one report.

The handler runs on a worker thread; everything MCP runs on the process loop (`core.aio`) through the
process's session pool, so the ERP server a tenant's first job starts serves its later jobs too. Each stage
on the loop has a deadline of its own on top of the per-call ones, so no stage can hold a worker forever.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Coroutine
from typing import Any, TypeVar

from core import aio
from core.errors import ToolTimeout
from mcp_clients.erp_client import fetch_snapshot
from mcp_clients.pool import McpPool, default_pool
from schemas.erp import ErpAnalysisPayload, ErpCategory, ErpReport, ErpTimings, ResearchResult
from schemas.mcp import McpServerConfig
from tasks.erp_analysis import report as build
from tasks.erp_analysis.context import JobContext
from tasks.erp_analysis.detectors import DetectContext, FxTable, run_detectors, tables_for
from tasks.erp_analysis.narrative import write_narrative
from tasks.erp_analysis.research import question, research
from tasks.erp_analysis.sources import find_sources

T = TypeVar("T")
ServerLoader = Callable[[list[str]], list[McpServerConfig]]
STAGE_CALLS = 8
"""A stage may take this many call timeouts in all (pages run four at a time) before it is abandoned."""


def _registered(names: list[str]) -> list[McpServerConfig]:
    from mcp_clients.registry import load_servers
    from tenancy.mongo import master_db

    return load_servers(master_db(), names)


def _on_loop(coro: Coroutine[Any, Any, T], budget: float, server: str, what: str) -> T:
    async def bounded() -> T:
        try:
            return await asyncio.wait_for(coro, budget)
        except TimeoutError:
            raise ToolTimeout(
                f"Reading from MCP server {server!r} ({what}) took longer than {budget:g} s in all; the "
                "server is too slow for this data set: raise its timeout_s or use quick mode.",
                server=server, tool=what,
            ) from None

    return aio.run(bounded(), budget + 5)


def _ordered(payload: ErpAnalysisPayload) -> list[ErpCategory]:
    chosen = list(dict.fromkeys(payload.categories))
    return chosen if payload.quick else [*chosen, *(c for c in ErpCategory if c not in chosen)]


def handle(ctx: JobContext, payload: ErpAnalysisPayload, *, servers: ServerLoader | None = None,
           pool: McpPool | None = None) -> dict[str, Any]:
    """Run one analysis and return the report (an `ErpReport` as JSON-ready dict)."""
    started = time.perf_counter()
    pool = pool or default_pool()
    tenant_id = ctx.envelope.tenant_id
    categories = _ordered(payload)
    configs = (servers or _registered)(list(ctx.agent.mcp_servers))
    first = configs[0].name if configs else "none"
    budget = pool.timeout_for(configs[0]) * STAGE_CALLS if configs else pool.settings.call_timeout_s
    sources = _on_loop(find_sources(pool, configs, ctx.agent, tenant_id, want_research=not payload.quick),
                       budget, first, "tools/list")
    erp = sources.erp
    fetch_started = time.perf_counter()
    snap = _on_loop(fetch_snapshot(pool, erp, tenant_id, tables_for(categories)),
                    pool.timeout_for(erp) * STAGE_CALLS, erp.name, "erp_read")
    fetch_ms = (time.perf_counter() - fetch_started) * 1000
    ctx.log.info("erp_analysis.fetched", server=erp.name, records=sum(snap.loaded.values()), ms=round(fetch_ms))
    ctx.audit("tool_call", server=erp.name, tool="erp_read", records=sum(snap.loaded.values()),
              duration_ms=round(fetch_ms, 1))

    detect_ctx, note = DetectContext.for_report(
        snap.description.as_of, FxTable(snap.fx_rates, snap.description.base_currency), ctx.currency)
    results = [build.category_result(run) for run in run_detectors(snap, categories, detect_ctx)]
    findings = [f for r in results for f in r.findings]

    research_started = time.perf_counter()
    if payload.quick:
        outcome = ResearchResult(status="skipped", reason="Quick mode skips the research step.")
    elif sources.research is None:
        why = " ".join(n for n in sources.notes if "skipped" in n)
        outcome = ResearchResult(status="skipped", reason=(
            "No research (Perplexity) MCP server with its key set is available to this agent. " + why).strip())
    else:
        server, tool = sources.research
        text = question(detect_ctx.currency, findings, payload.prompt)
        outcome = _on_loop(research(pool, server, tool, tenant_id, text), pool.timeout_for(server) + 5,
                           server.name, tool)
    research_ms = (time.perf_counter() - research_started) * 1000
    if sources.research is not None and not payload.quick:
        ctx.audit("tool_call", server=sources.research[0].name, tool=sources.research[1], status=outcome.status,
                  duration_ms=round(research_ms, 1))

    narrative_started = time.perf_counter()
    narrative = write_narrative(ctx, payload.prompt, results, outcome, detect_ctx.currency, payload.system_details)
    narrative_ms = (time.perf_counter() - narrative_started) * 1000

    notes = [*sources.notes, *([note] if note else [])]
    result = ErpReport(
        mode="quick" if payload.quick else "full", prompt=payload.prompt, currency=detect_ctx.currency,
        categories=results, totals=build.totals(results, detect_ctx.currency), narrative=narrative,
        research=outcome, coverage=build.coverage(erp.name, snap, categories, notes),
        timings=ErpTimings(fetch_ms=round(fetch_ms, 2), detect_ms={r.category: r.duration_ms for r in results},
                           research_ms=round(research_ms, 2), narrative_ms=round(narrative_ms, 2),
                           total_ms=round((time.perf_counter() - started) * 1000, 2)),
    )
    ctx.audit("erp_analysis.report", server=erp.name, findings=result.totals.findings,
              amount=result.totals.amount, currency=result.currency, research=outcome.status)
    return result.model_dump(mode="json")
