"""The erp_analysis handler end to end: the bundled ERP server over real stdio, detectors, narrative, report."""

from __future__ import annotations

import json
import sys
import textwrap
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
import structlog

from core import aio
from core.errors import ModelOutputInvalid, ToolError, ToolResultInvalid, ToolTimeout, ToolUnavailable
from core.settings import McpSettings
from mcp_clients.erp_server.generator import generate
from mcp_clients.pool import McpPool
from mcp_clients.registry import bundled_erp_server
from schemas.agents import AgentConfig, ModelConfig
from schemas.erp import ErpAnalysisPayload, ErpCategory, ErpReport, Narrative
from schemas.jobs import JobEnvelope, JobKind, PriorityClass
from schemas.mcp import McpServerConfig
from tasks.erp_analysis.handler import handle

pytestmark = pytest.mark.timeout(90)

RECORDS, SEED = 2_000, 5
ERP = bundled_erp_server(records=RECORDS, seed=SEED)

RESEARCH_SERVER = textwrap.dedent('''
    import os
    from mcp.server.mcpserver import MCPServer

    app = MCPServer("research", log_level="WARNING")

    @app.tool(structured_output=False)
    def perplexity_ask(messages: list[dict[str, str]]) -> str:
        key = os.environ["PERPLEXITY_API_KEY"]
        return f"Supplier prices rose (key ending {key[-2:]}); asked: {messages[-1]['content'][:40]}"

    app.run("stdio")
''')

FAULTY_ERP_SERVER = textwrap.dedent('''
    import os, sys, time
    from mcp.server.mcpserver import MCPServer
    from mcp_clients.erp_server.generator import generate
    from mcp_clients.erp_server.server import describe

    tenant, mode = sys.argv[1], sys.argv[2]
    description = describe(generate(1_000, 1, tenant)).model_dump_json()
    app = MCPServer("faulty-erp", log_level="WARNING")

    @app.tool(name="erp_describe", structured_output=False)
    def erp_describe() -> str:
        return description

    @app.tool(name="erp_read", structured_output=False)
    def erp_read(table: str, offset: int = 0, limit: int = 5000) -> str:
        if mode == "crash":
            os._exit(1)
        time.sleep(3600)
        return ""

    app.run("stdio")
''')


@dataclass
class StubContext:
    """The job context with a canned model: it answers the narrative from the findings it is sent."""

    tenant_id: str
    agent_servers: list[str]
    currency: str = "EUR"
    answer: str | None = None
    calls: list[dict[str, Any]] = field(default_factory=list)
    audits: list[tuple[str, dict[str, Any]]] = field(default_factory=list)
    log: Any = field(default_factory=structlog.get_logger)

    @property
    def envelope(self) -> JobEnvelope:
        return JobEnvelope(job_id="job-1", tenant_id=self.tenant_id, kind=JobKind.erp_analysis,
                           priority=PriorityClass.batch, payload={}, enqueued_at=datetime.now(UTC))

    @property
    def agent(self) -> AgentConfig:
        return AgentConfig(tenant_id=self.tenant_id, tenant_name=self.tenant_id.title(), currency=self.currency,
                           template_id="erp-analyst", name="ERP Analyst",
                           models=[ModelConfig(name="offline", model="offline/tenantq-draft")],
                           prompt_sources={"erp_analysis": "You are an ERP analyst."},
                           mcp_servers=self.agent_servers)

    def render(self, kind: str, **variables: Any) -> str:
        return f"system prompt for {kind}"

    def complete(self, messages: list[dict[str, Any]], *, json_schema: dict[str, Any] | None = None,
                 metadata: dict[str, Any] | None = None, max_tokens: int | None = None) -> Any:
        self.calls.append({"messages": messages, "json_schema": json_schema, "metadata": metadata})
        findings = (metadata or {}).get("findings", [])
        text = self.answer or json.dumps({
            "summary": f"{len(findings)} exceptions need attention.",
            "root_causes": sorted({f["category"] for f in findings}),
            "recommended_actions": ["Review the largest amounts first."],
        })
        return SimpleNamespace(text=text)

    def audit(self, event: str, **data: Any) -> None:
        self.audits.append((event, data))


@pytest.fixture(scope="module")
def pool() -> Iterator[McpPool]:
    """One pool on the process loop for the module, as a worker process would hold it."""
    shared = McpPool(McpSettings())
    yield shared
    aio.run(shared.aclose(), 30)


@pytest.fixture(scope="module")
def research_script(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("research") / "research_server.py"
    path.write_text(RESEARCH_SERVER)
    return path


@pytest.fixture(scope="module")
def faulty_erp(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("faulty-erp") / "faulty_erp_server.py"
    path.write_text(FAULTY_ERP_SERVER)
    return path


def run_job(pool: McpPool, ctx: StubContext, configs: list[McpServerConfig], **payload: Any) -> ErpReport:
    by_name = {c.name: c for c in configs}
    result = handle(ctx, ErpAnalysisPayload(prompt="Where are we losing money?", **payload),
                    servers=lambda names: [by_name[n] for n in names], pool=pool)
    return ErpReport.model_validate(result)


def test_a_full_analysis_over_stdio_reports_every_planted_exception(pool: McpPool) -> None:
    ctx = StubContext("acme", ["erp"])
    report = run_job(pool, ctx, [ERP])
    found = sorted((f.category.value, f.detector, f.key) for c in report.categories for f in c.findings)
    expected = sorted((p.category, p.detector, p.key) for p in generate(RECORDS, SEED, "acme").planted)
    assert found == expected
    assert report.mode == "full" and [c.category for c in report.categories] == list(ErpCategory)
    assert report.totals.findings == len(expected) and report.totals.currency == "EUR"
    assert report.coverage.records == generate(RECORDS, SEED, "acme").records
    assert report.coverage.server == "erp" and report.coverage.categories_skipped == []
    assert report.research.status == "skipped" and "Perplexity" in (report.research.reason or "")
    assert report.narrative.summary == f"{len(expected)} exceptions need attention."
    assert set(report.timings.detect_ms) == set(ErpCategory) and report.timings.total_ms > 0
    call = ctx.calls[0]
    assert call["json_schema"] == Narrative.model_json_schema()
    assert call["metadata"]["kind"] == "erp_analysis"
    assert set(call["metadata"]["findings"][0]) == {"category", "detector", "severity", "amount", "currency",
                                                    "summary"}
    assert ctx.audits[-1][0] == "erp_analysis.report"


def test_quick_mode_runs_only_the_chosen_categories_and_reads_only_their_tables(pool: McpPool) -> None:
    report = run_job(pool, StubContext("acme", ["erp"]), [ERP], quick=True,
                     categories=[ErpCategory.inventory, ErpCategory.production])
    assert [c.category for c in report.categories] == [ErpCategory.inventory, ErpCategory.production]
    assert set(report.coverage.tables) == {"fx_rates", "inventory", "work_centres", "production_orders",
                                           "production_components", "qc_results"}
    assert len(report.coverage.categories_skipped) == 4
    assert report.research.status == "skipped" and "Quick" in (report.research.reason or "")


def test_amounts_are_reported_in_the_tenants_currency(pool: McpPool) -> None:
    report = run_job(pool, StubContext("acme", ["erp"], currency="USD"), [ERP], quick=True,
                     categories=[ErpCategory.financial])
    assert report.currency == "USD" and report.totals.currency == "USD"
    assert {f.currency for c in report.categories for f in c.findings} == {"USD"}


def test_a_narrative_that_is_not_the_required_json_fails_the_job_clearly(pool: McpPool) -> None:
    ctx = StubContext("acme", ["erp"], answer='{"summary": ""}')
    with pytest.raises(ModelOutputInvalid) as failure:
        run_job(pool, ctx, [ERP], quick=True, categories=[ErpCategory.inventory])
    assert "summary" in failure.value.message


def test_a_narrative_in_a_code_fence_is_accepted(pool: McpPool) -> None:
    fenced = '```json\n{"summary": "Fine.", "root_causes": [], "recommended_actions": []}\n```'
    report = run_job(pool, StubContext("acme", ["erp"], answer=fenced), [ERP], quick=True,
                     categories=[ErpCategory.inventory])
    assert report.narrative.summary == "Fine."


def test_an_erp_server_started_for_another_tenant_is_refused(pool: McpPool) -> None:
    other = ERP.model_copy(update={"name": "erp-globex", "args": [
        a if a != "{tenant_id}" else "globex" for a in ERP.args]})
    with pytest.raises(ToolResultInvalid) as failure:
        run_job(pool, StubContext("acme", ["erp-globex"]), [other], quick=True, categories=[ErpCategory.inventory])
    assert "'globex'" in failure.value.message and failure.value.context["server"] == "erp-globex"


def test_an_agent_without_an_erp_server_gets_a_clear_error(pool: McpPool, research_script: Path) -> None:
    research = McpServerConfig(name="research", command=sys.executable, args=[str(research_script)],
                               env={"PERPLEXITY_API_KEY": "${TQ_TEST_PPLX_KEY}"})
    with pytest.raises(ToolUnavailable) as failure:
        run_job(pool, StubContext("acme", ["research"]), [research])
    assert "erp_describe" in failure.value.message


def test_research_runs_only_where_its_server_is_registered_and_its_key_is_set(
    pool: McpPool, research_script: Path, monkeypatch: pytest.MonkeyPatch,
) -> None:
    research = McpServerConfig(name="research", command=sys.executable, args=[str(research_script)],
                               env={"PERPLEXITY_API_KEY": "${TQ_TEST_PPLX_KEY}"}, timeout_s=20)
    monkeypatch.delenv("TQ_TEST_PPLX_KEY", raising=False)
    without_key = run_job(pool, StubContext("acme", ["erp", "research"]), [ERP, research])
    assert without_key.research.status == "skipped"
    assert "TQ_TEST_PPLX_KEY" in (without_key.research.reason or "")

    monkeypatch.setenv("TQ_TEST_PPLX_KEY", "pplx-test-42")
    ctx = StubContext("acme", ["erp", "research"])
    with_key = run_job(pool, ctx, [ERP, research])
    assert with_key.research.status == "done" and with_key.research.tool == "perplexity_ask"
    assert "key ending 42" in (with_key.research.text or "")
    assert "Supplier prices rose" in ctx.calls[0]["messages"][1]["content"]


# `within` counts the server's start too: 2-3 s of importing its SDK on a busy machine.
@pytest.mark.parametrize("mode, error, within", [("crash", ToolUnavailable, 12.0), ("hang", ToolTimeout, 8.5)])
def test_an_erp_server_that_crashes_or_hangs_mid_read_fails_the_job_naming_server_and_tool(
    pool: McpPool, faulty_erp: Path, mode: str, error: type[ToolError], within: float,
) -> None:
    broken = McpServerConfig(name=f"erp-{mode}", command=sys.executable, timeout_s=2,
                             args=[str(faulty_erp), "{tenant_id}", mode], allowed_tools=list(ERP.allowed_tools))
    started = time.monotonic()
    with pytest.raises(error) as failure:
        run_job(pool, StubContext("acme", [broken.name]), [broken], quick=True, categories=[ErpCategory.inventory])
    assert time.monotonic() - started < within
    assert failure.value.context["server"] == broken.name and failure.value.context["tool"] == "erp_read"
    healthy = run_job(pool, StubContext("acme", ["erp"]), [ERP], quick=True, categories=[ErpCategory.inventory])
    assert healthy.categories[0].count > 0
