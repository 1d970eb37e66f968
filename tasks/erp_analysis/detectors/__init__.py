"""Deterministic exception detectors, one module per business process.

Each module exposes `TABLES` (what it reads, so a quick analysis fetches only those) and `detect(snapshot,
ctx)`. Every detector is a single pass over its tables with dict indexes, O(n), so 100,000 records take
well under a second per category.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass

from mcp_clients.erp_contract import ErpSnapshot
from schemas.erp import ErpCategory, Finding
from tasks.erp_analysis.detectors import financial, fulfilment, inventory, invoice_matching, procurement, production
from tasks.erp_analysis.detectors.common import DetectContext, FxTable


@dataclass(frozen=True)
class Detector:
    category: ErpCategory
    tables: tuple[str, ...]
    detect: Callable[[ErpSnapshot, DetectContext], list[Finding]]


DETECTORS: dict[ErpCategory, Detector] = {
    ErpCategory.financial: Detector(ErpCategory.financial, financial.TABLES, financial.detect),
    ErpCategory.procurement: Detector(ErpCategory.procurement, procurement.TABLES, procurement.detect),
    ErpCategory.inventory: Detector(ErpCategory.inventory, inventory.TABLES, inventory.detect),
    ErpCategory.order_fulfilment: Detector(ErpCategory.order_fulfilment, fulfilment.TABLES, fulfilment.detect),
    ErpCategory.production: Detector(ErpCategory.production, production.TABLES, production.detect),
    ErpCategory.invoice_matching: Detector(
        ErpCategory.invoice_matching, invoice_matching.TABLES, invoice_matching.detect
    ),
}


def tables_for(categories: Iterable[ErpCategory]) -> list[str]:
    """The tables the given categories read, each once; FX rates always, to convert amounts."""
    wanted = {"fx_rates"}
    for category in categories:
        wanted.update(DETECTORS[category].tables)
    return sorted(wanted)


@dataclass(frozen=True)
class CategoryRun:
    category: ErpCategory
    findings: list[Finding]
    records_checked: int
    duration_ms: float


def run_detectors(snap: ErpSnapshot, categories: Iterable[ErpCategory], ctx: DetectContext) -> list[CategoryRun]:
    runs = []
    for category in categories:
        detector = DETECTORS[category]
        started = time.perf_counter()
        findings = detector.detect(snap, ctx)
        elapsed = (time.perf_counter() - started) * 1000
        runs.append(CategoryRun(category, findings, snap.count(*detector.tables), elapsed))
    return runs


__all__ = ["DETECTORS", "CategoryRun", "DetectContext", "FxTable", "run_detectors", "tables_for"]
