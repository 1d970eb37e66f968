"""Inventory: stock-outs, negative stock, overstock, slow movers, expired stock and count discrepancies."""

from __future__ import annotations

from mcp_clients.erp_contract import ErpSnapshot, InventoryItem
from schemas.erp import ErpCategory, Finding, Severity
from tasks.erp_analysis.detectors.common import Collector, DetectContext

TABLES = ("inventory",)

OVERSTOCK = 1.5  # on hand above this multiple of the maximum stock level
SLOW_DAYS = 180
COUNT_TOLERANCE = 0.02  # share of the book quantity, and never less than one unit


def detect(snap: ErpSnapshot, ctx: DetectContext) -> list[Finding]:
    out = Collector(ErpCategory.inventory, ctx)
    for it in snap.inventory:
        _levels(it, out)
        _age(it, ctx, out)
        if it.count_qty is not None and it.count_book_qty is not None:
            gap = it.count_qty - it.count_book_qty
            if abs(gap) > max(1.0, COUNT_TOLERANCE * abs(it.count_book_qty)):
                out.add("count_discrepancy", it.id, gap * it.unit_cost,
                        f"{it.material} in {it.plant}: counted {it.count_qty:g} on {it.count_date} against "
                        f"{it.count_book_qty:g} in the books ({gap:+g}).", [it.id])
    return out.findings


def _levels(it: InventoryItem, out: Collector) -> None:
    where = f"{it.material} in {it.plant}"
    if it.on_hand < 0:
        out.add("negative_stock", it.id, it.on_hand * it.unit_cost,
                f"{where} shows negative stock of {it.on_hand:g}: issues were posted before receipts.",
                [it.id], Severity.medium)
    elif it.on_hand == 0 and it.reorder_point > 0:
        out.add("stock_out", it.id, it.reorder_point * it.unit_cost,
                f"{where} is out of stock (reorder point {it.reorder_point:g}).", [it.id], Severity.medium)
    if it.max_stock > 0 and it.on_hand > it.max_stock * OVERSTOCK:
        out.add("overstock", it.id, (it.on_hand - it.max_stock) * it.unit_cost,
                f"{where}: {it.on_hand:g} on hand against a maximum of {it.max_stock:g}.", [it.id])


def _age(it: InventoryItem, ctx: DetectContext, out: Collector) -> None:
    if it.on_hand <= 0:
        return
    where = f"{it.material} in {it.plant}"
    idle = (ctx.as_of - it.last_movement).days
    if idle > SLOW_DAYS:
        out.add("slow_mover", it.id, it.on_hand * it.unit_cost,
                f"{where}: {it.on_hand:g} on hand with no movement for {idle} days.", [it.id])
    if it.expiry is not None and it.expiry < ctx.as_of:
        out.add("expired_stock", it.id, it.on_hand * it.unit_cost,
                f"{where}: {it.on_hand:g} on hand expired on {it.expiry}.", [it.id], Severity.medium)
