"""The optional research step: outside context for the exceptions, from a Perplexity MCP server.

Only aggregates leave the tenant (which checks fired, how often, how much is at stake) - never document
ids, partners or amounts of single documents - because the research server is a third party. A failed
research step is reported, not fatal: the findings stand on their own.
"""

from __future__ import annotations

from collections import defaultdict

from core.errors import TenantqError
from mcp_clients.pool import McpPool
from schemas.erp import ErpCategory, Finding, ResearchResult
from schemas.mcp import McpServerConfig

MAX_TEXT = 4_000
TOP_CHECKS = 8


def question(company_currency: str, findings: list[Finding], prompt: str) -> str:
    totals: dict[tuple[ErpCategory, str], list[float]] = defaultdict(list)
    for f in findings:
        totals[(f.category, f.detector)].append(f.amount)
    ranked = sorted(totals.items(), key=lambda item: -sum(item[1]))[:TOP_CHECKS]
    lines = [f"- {cat.value} / {det}: {len(a)} cases, {sum(a):,.0f} {company_currency} at stake"
             for (cat, det), a in ranked]
    return (
        "An ERP exception review of a mid-sized manufacturer found these kinds of exceptions:\n"
        + ("\n".join(lines) or "- none")
        + f"\nThe analyst asks: {prompt[:500]}\n"
        "In at most five short bullet points, which current external factors (currency moves, supplier and "
        "commodity markets, logistics, regulation) could explain or aggravate them? Cite sources."
    )


async def research(pool: McpPool, server: McpServerConfig, tool: str, tenant_id: str, text: str) -> ResearchResult:
    try:
        answer = await pool.call_text(server, tool, {"messages": [{"role": "user", "content": text}]},
                                      tenant_id=tenant_id)
    except TenantqError as exc:
        return ResearchResult(status="failed", reason=exc.message, server=server.name, tool=tool)
    return ResearchResult(status="done", server=server.name, tool=tool, text=answer[:MAX_TEXT])
