"""Assembling the report: findings by category (worst first), totals, data coverage and timings."""

from __future__ import annotations

from collections import Counter

from mcp_clients.erp_contract import ErpSnapshot
from schemas.erp import (
    CategoryResult,
    DataCoverage,
    ErpCategory,
    ErpTotals,
    Finding,
    Severity,
)
from tasks.erp_analysis.detectors import CategoryRun

_RANK = {s: n for n, s in enumerate(Severity)}
MAX_LISTED = 500
"""Findings listed per category, worst first; a report is one document in the tenant's database."""


def _worst_first(f: Finding) -> tuple[int, float, str]:
    return (-_RANK[f.severity], -f.amount, f.key)


def category_result(run: CategoryRun) -> CategoryResult:
    counts = Counter(f.severity for f in run.findings)
    listed = sorted(run.findings, key=_worst_first)[:MAX_LISTED]
    return CategoryResult(
        category=run.category, findings=listed, count=len(run.findings), omitted=len(run.findings) - len(listed),
        amount=round(sum(f.amount for f in run.findings), 2), by_severity={s: counts.get(s, 0) for s in Severity},
        records_checked=run.records_checked, duration_ms=round(run.duration_ms, 2),
    )


def totals(results: list[CategoryResult], currency: str) -> ErpTotals:
    counts: Counter[Severity] = Counter()
    for r in results:
        counts.update(r.by_severity)
    return ErpTotals(
        findings=sum(r.count for r in results), amount=round(sum(r.amount for r in results), 2),
        currency=currency, by_severity={s: counts.get(s, 0) for s in Severity},
        by_category={r.category: r.amount for r in results},
    )


def coverage(server: str, snap: ErpSnapshot, run: list[ErpCategory], notes: list[str]) -> DataCoverage:
    desc = snap.description
    return DataCoverage(
        server=server, company=desc.company, as_of=desc.as_of, base_currency=desc.base_currency,
        tables=dict(sorted(snap.loaded.items())), records=sum(snap.loaded.values()), categories_run=run,
        categories_skipped=[c for c in ErpCategory if c not in run], notes=notes,
    )
