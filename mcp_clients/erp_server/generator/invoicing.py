"""Goods receipts and vendor invoices, made from the (possibly planted) purchase orders.

Clean invoices bill exactly what was received at the order price, with the tax of their tax code, and each
vendor's references are unique; receipts may come in two parts. Exceptions are planted on distinct
invoices so that each one trips exactly one check.
"""

from __future__ import annotations

from datetime import timedelta

from mcp_clients.erp_contract import GoodsReceipt, Invoice, PurchaseOrder
from mcp_clients.erp_server.generator.common import AS_OF, Gen
from mcp_clients.erp_server.generator.finance import TAX_CODES, tax_due

MATCHING = "invoice_matching"


def make_receipts_and_invoices(gen: Gen) -> None:
    orders: list[PurchaseOrder] = gen.tables["purchase_orders"]
    receipts: list[GoodsReceipt] = []
    invoices: list[Invoice] = []
    codes = [t.code for t in TAX_CODES]
    for po in orders:
        if (AS_OF - po.order_date).days < 10 or gen.rng.random() > 0.86:
            continue
        first = po.order_date + timedelta(days=gen.rng.randint(3, 8))
        parts = [po.qty] if po.qty < 2 or gen.rng.random() < 0.8 else [po.qty // 2, po.qty - po.qty // 2]
        for k, qty in enumerate(parts):
            day = min(AS_OF, first + timedelta(days=k * 2))
            receipts.append(GoodsReceipt(f"GR-{len(receipts) + 1:07d}", po.id, qty, day))
        if gen.rng.random() < 0.9:
            net = round(po.qty * po.unit_price, 2)
            code = gen.rng.choice(codes)
            day = min(AS_OF, first + timedelta(days=gen.rng.randint(2, 15)))
            invoices.append(Invoice(f"INV-{len(invoices) + 1:07d}", po.vendor, f"R{len(invoices) + 1:06d}-{day.year}",
                                    po.id, day, po.qty, po.unit_price, net, code, tax_due(net, code), po.currency))
    gen.tables["goods_receipts"] = receipts
    gen.tables["invoices"] = invoices
    _plant(gen, orders, receipts, invoices)


def _rebill(inv: Invoice, *, qty: float | None = None, price: float | None = None) -> Invoice:
    qty = inv.qty if qty is None else qty
    price = inv.unit_price if price is None else price
    net = round(qty * price, 2)
    return inv._replace(qty=qty, unit_price=price, net=net, tax=tax_due(net, inv.tax_code))


def _plant(gen: Gen, orders: list[PurchaseOrder], receipts: list[GoodsReceipt], invoices: list[Invoice]) -> None:
    per = gen.plants_per_detector()
    everything = list(range(len(invoices)))
    for i in gen.pick(everything, per, "inv"):
        invoices[i] = _rebill(invoices[i], price=round(invoices[i].unit_price * gen.rng.uniform(1.05, 1.2), 2))
        gen.record(MATCHING, "price_variance", invoices[i].id)
    for i in gen.pick(everything, per, "inv"):
        invoices[i] = _rebill(invoices[i], qty=invoices[i].qty + gen.rng.randint(2, 40))
        gen.record(MATCHING, "quantity_variance", invoices[i].po or "")
    unreceived = gen.pick(everything, per, "inv")
    dropped = {invoices[i].po for i in unreceived}
    receipts[:] = [r for r in receipts if r.po not in dropped]
    for n, gr in enumerate(receipts, start=1):
        receipts[n - 1] = gr._replace(id=f"GR-{n:07d}")
    for i in unreceived:
        gen.record(MATCHING, "missing_receipt", invoices[i].id)
    for i in gen.pick(everything, per, "inv"):
        ghost = f"PO-9{gen.rng.randint(0, 999_999):06d}" if gen.rng.random() < 0.5 else None
        invoices[i] = invoices[i]._replace(po=ghost)
        gen.record(MATCHING, "missing_po", invoices[i].id)
    for i in gen.pick(everything, per, "inv"):
        original = invoices[i]
        ref = original.vendor_ref if gen.rng.random() < 0.5 else original.vendor_ref.replace("-", "").lower()
        later = min(AS_OF, original.invoice_date + timedelta(days=gen.rng.randint(1, 20)))
        invoices.append(original._replace(id=f"INV-{len(invoices) + 1:07d}", vendor_ref=ref, invoice_date=later))
        gen.record(MATCHING, "duplicate_invoice", original.id)
    for i in gen.pick(everything, per, "inv"):
        invoices[i] = invoices[i]._replace(tax=round(invoices[i].tax + gen.rng.uniform(5, 60), 2))
        gen.record("financial", "tax_error", invoices[i].id)
