"""Invoice matching: the three-way match of order, receipt and invoice, and duplicate invoices.

A duplicate is reported once, on the earliest invoice of its group, and the copies are left out of the
quantity match, so one double-billed invoice does not also show up as an over-invoiced order.
"""

from __future__ import annotations

import re
from collections import defaultdict

from mcp_clients.erp_contract import ErpSnapshot, Invoice, PurchaseOrder
from schemas.erp import ErpCategory, Finding, Severity
from tasks.erp_analysis.detectors.common import Collector, DetectContext, money

TABLES = ("invoices", "purchase_orders", "goods_receipts", "fx_rates")

PRICE_TOLERANCE = 0.02
QUANTITY_TOLERANCE = 0.0  # units invoiced beyond what was received
_NOT_ALNUM = re.compile(r"[^0-9A-Z]")


def detect(snap: ErpSnapshot, ctx: DetectContext) -> list[Finding]:
    out = Collector(ErpCategory.invoice_matching, ctx)
    orders = {po.id: po for po in snap.purchase_orders}
    received: dict[str, float] = defaultdict(float)
    receipts: dict[str, list[str]] = defaultdict(list)
    for gr in snap.goods_receipts:
        received[gr.po] += gr.qty
        receipts[gr.po].append(gr.id)
    copies = _duplicates(snap.invoices, ctx, out)
    invoiced: dict[str, list[Invoice]] = defaultdict(list)
    for inv in snap.invoices:
        if inv.id in copies:
            continue
        po = orders.get(inv.po) if inv.po else None
        if po is None:
            out.add("missing_po", inv.id, _base(ctx, inv.net, inv),
                    f"Invoice {inv.id} from {inv.vendor} ({money(inv.net, inv.currency)}) refers to "
                    f"{'no purchase order' if not inv.po else f'purchase order {inv.po}, which does not exist'}.",
                    [inv.id], Severity.medium)
            continue
        _price(inv, po, ctx, out)
        if po.id not in received:
            out.add("missing_receipt", inv.id, _base(ctx, inv.net, inv),
                    f"Invoice {inv.id} bills {inv.qty:g} on PO {po.id}, but nothing has been received.",
                    [inv.id, po.id], Severity.medium)
            continue
        invoiced[po.id].append(inv)
    for po_id, bills in invoiced.items():
        qty = sum(b.qty for b in bills)
        if qty > received[po_id] + QUANTITY_TOLERANCE:
            po = orders[po_id]
            extra = qty - received[po_id]
            amount = ctx.fx.to_base(extra * po.unit_price, po.currency, po.order_date)
            out.add("quantity_variance", po_id, extra * po.unit_price if amount is None else amount,
                    f"PO {po_id}: {qty:g} invoiced but {received[po_id]:g} received.",
                    [po_id, *(b.id for b in bills), *receipts[po_id]])
    return out.findings


def _base(ctx: DetectContext, amount: float, inv: Invoice) -> float:
    converted = ctx.fx.to_base(amount, inv.currency, inv.invoice_date)
    return amount if converted is None else converted


def _price(inv: Invoice, po: PurchaseOrder, ctx: DetectContext, out: Collector) -> None:
    billed = ctx.fx.to_base(inv.unit_price, inv.currency, inv.invoice_date)
    ordered = ctx.fx.to_base(po.unit_price, po.currency, inv.invoice_date)
    if billed is None or ordered is None or ordered <= 0:
        return
    if abs(billed - ordered) / ordered > PRICE_TOLERANCE:
        out.add("price_variance", inv.id, (billed - ordered) * inv.qty,
                f"Invoice {inv.id} bills {money(inv.unit_price, inv.currency)} per unit against "
                f"{money(po.unit_price, po.currency)} on PO {po.id}.", [inv.id, po.id])


def _duplicates(invoices: list[Invoice], ctx: DetectContext, out: Collector) -> set[str]:
    """Invoices with the same vendor, reference (ignoring case and punctuation) and net amount."""
    groups: dict[tuple[str, str, float], list[Invoice]] = defaultdict(list)
    for inv in invoices:
        groups[(inv.vendor, _NOT_ALNUM.sub("", inv.vendor_ref.upper()), round(inv.net, 2))].append(inv)
    copies: set[str] = set()
    for (vendor, _, net), group in groups.items():
        if len(group) < 2:
            continue
        group.sort(key=lambda inv: inv.id)
        first = group[0]
        copies.update(inv.id for inv in group[1:])
        out.add("duplicate_invoice", first.id, _base(ctx, net, first) * (len(group) - 1),
                f"Invoice {first.id} from {vendor} ({money(net, first.currency)}, reference "
                f"{first.vendor_ref}) was booked {len(group)} times.", [inv.id for inv in group], Severity.high)
    return copies
