"""Procurement: orders to unapproved vendors, over their requisition, unapproved, off-contract or off-price."""

from __future__ import annotations

from mcp_clients.erp_contract import Contract, ErpSnapshot, PurchaseOrder
from schemas.erp import ErpCategory, Finding, Severity
from tasks.erp_analysis.detectors.common import Collector, DetectContext, money

TABLES = ("vendors", "contracts", "purchase_orders", "fx_rates")

APPROVAL_LIMIT = 10_000.0  # base currency; orders from here up need an approver
OVER_REQUISITION = 0.05
PRICE_TOLERANCE = 0.05


def detect(snap: ErpSnapshot, ctx: DetectContext) -> list[Finding]:
    out = Collector(ErpCategory.procurement, ctx)
    vendors = {v.id: v for v in snap.vendors}
    contracts = {c.id: c for c in snap.contracts}
    for po in snap.purchase_orders:
        value_doc = po.qty * po.unit_price
        converted = ctx.fx.to_base(value_doc, po.currency, po.order_date)
        value = value_doc if converted is None else converted
        shown = money(value_doc, po.currency)
        vendor = vendors.get(po.vendor)
        if vendor is None or vendor.status != "approved":
            status = "unknown" if vendor is None else vendor.status
            out.add("unapproved_vendor", po.id, value,
                    f"PO {po.id} ({shown}) was placed with vendor {po.vendor}, whose status is {status}.",
                    [po.id, po.vendor], Severity.high)
        if value_doc > po.requisition_amount * (1 + OVER_REQUISITION):
            over = value_doc - po.requisition_amount
            over_base = ctx.fx.to_base(over, po.currency, po.order_date)
            out.add("po_over_budget", po.id, over if over_base is None else over_base,
                    f"PO {po.id} is for {shown}, {money(over, po.currency)} over its approved requisition "
                    f"of {money(po.requisition_amount, po.currency)}.", [po.id])
        if value >= APPROVAL_LIMIT and not po.approved_by:
            out.add("missing_approval", po.id, value,
                    f"PO {po.id} ({shown}) is above the approval limit and has no approver.", [po.id],
                    Severity.high)
        if po.contract:
            _contract(po, contracts.get(po.contract), value, ctx, out)
    return out.findings


def _contract(po: PurchaseOrder, contract: Contract | None, value: float, ctx: DetectContext,
              out: Collector) -> None:
    if contract is None or not contract.valid_from <= po.order_date <= contract.valid_to:
        why = ("does not exist" if contract is None
               else f"was valid {contract.valid_from} to {contract.valid_to}")
        out.add("expired_contract", po.id, value,
                f"PO {po.id} of {po.order_date} refers to contract {po.contract}, which {why}.",
                [po.id, po.contract or ""], Severity.medium)
        return
    po_price = ctx.fx.to_base(po.unit_price, po.currency, po.order_date)
    agreed = ctx.fx.to_base(contract.price, contract.currency, po.order_date)
    if po_price is None or agreed is None or agreed <= 0:
        return
    if abs(po_price - agreed) / agreed > PRICE_TOLERANCE:
        out.add("price_variance", po.id, (po_price - agreed) * po.qty,
                f"PO {po.id} buys {po.material} at {money(po.unit_price, po.currency)} against the contract "
                f"price of {money(contract.price, contract.currency)} ({contract.id}).", [po.id, contract.id])
