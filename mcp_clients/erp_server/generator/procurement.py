"""Procurement: vendors, contracts and purchase orders with their approvals.

Clean orders buy at the contract price inside the contract's validity, stay within their requisition, and
carry an approver from just under the approval limit up (so rounding at the limit never flags a clean
order). Exceptions are planted before receipts and invoices are made, so those follow the planted order
and no exception spills into the invoice checks.
"""

from __future__ import annotations

from datetime import timedelta

from mcp_clients.erp_contract import Contract, PurchaseOrder, Vendor
from mcp_clients.erp_server.generator.common import APPROVAL_LIMIT, AS_OF, BASE_CURRENCY, PLANTS, Gen

CATEGORY = "procurement"
COUNTRIES = ["DE", "FR", "IT", "NL", "US", "GB", "CH", "PL", "CZ", "SE"]
CURRENCY_OF = {"US": "USD", "GB": "GBP", "CH": "CHF", "SE": "SEK"}


def make_vendors(gen: Gen) -> None:
    vendors: list[Vendor] = []
    contracts: list[Contract] = []
    for n in range(1, gen.share(0.011, 5) + 1):
        country = gen.rng.choice(COUNTRIES)
        vendor = Vendor(f"V-{n:05d}", f"Vendor {n} {country}", country, "approved")
        vendors.append(vendor)
        for material in gen.rng.sample(gen.raw, min(len(gen.raw), gen.rng.randint(1, 3))):
            currency = CURRENCY_OF.get(country, BASE_CURRENCY)
            price = round(gen.material_cost[material] * gen.rng.uniform(0.9, 1.1) / gen.rate(currency, AS_OF), 2)
            contracts.append(Contract(f"C-{len(contracts) + 1:06d}", vendor.id, material, price, currency,
                                      AS_OF - timedelta(days=420), AS_OF + timedelta(days=240)))
    gen.tables["vendors"] = vendors
    gen.tables["contracts"] = contracts


def _value_base(gen: Gen, po: PurchaseOrder) -> float:
    return po.qty * po.unit_price * gen.rate(po.currency, po.order_date)


def _settle(gen: Gen, po: PurchaseOrder) -> PurchaseOrder:
    """Give an order a matching requisition and, near or above the limit, an approver."""
    value = round(po.qty * po.unit_price, 2)
    po = po._replace(requisition_amount=round(value * gen.rng.uniform(1.0, 1.08), 2))
    if _value_base(gen, po) >= APPROVAL_LIMIT * 0.98 and po.approved_by is None:
        po = po._replace(approved_by=f"U-{gen.rng.randint(1, 80):03d}")
    return po


def make_orders(gen: Gen) -> None:
    contracts: list[Contract] = gen.tables["contracts"]
    vendors: list[Vendor] = gen.tables["vendors"]
    centres = sorted({row.cost_centre for row in gen.tables["gl_balances"]})
    orders: list[PurchaseOrder] = []
    for n in range(1, gen.share(0.105, 30) + 1):
        ordered = gen.day(-300, -5)
        approver = f"U-{gen.rng.randint(1, 80):03d}" if gen.rng.random() < 0.5 else None
        if gen.rng.random() < 0.9:
            c = gen.rng.choice(contracts)
            po = PurchaseOrder(f"PO-{n:07d}", c.vendor, c.id, gen.rng.choice(centres), c.material,
                               gen.rng.choice(PLANTS), float(gen.rng.randint(1, 400)), c.price, c.currency,
                               ordered, 0.0, approver)
        else:
            material = gen.rng.choice(gen.raw)
            price = round(gen.material_cost[material] * gen.rng.uniform(0.9, 1.2), 2)
            po = PurchaseOrder(f"PO-{n:07d}", gen.rng.choice(vendors).id, None, gen.rng.choice(centres),
                               material, gen.rng.choice(PLANTS), float(gen.rng.randint(1, 400)), price,
                               BASE_CURRENCY, ordered, 0.0, approver)
        orders.append(_settle(gen, po))
    gen.tables["purchase_orders"] = orders
    _plant(gen, orders)


def _plant(gen: Gen, orders: list[PurchaseOrder]) -> None:
    per = gen.plants_per_detector()
    vendors: list[Vendor] = gen.tables["vendors"]
    contracts: list[Contract] = gen.tables["contracts"]
    everything = list(range(len(orders)))
    with_contract = [i for i, po in enumerate(orders) if po.contract]
    for i in gen.pick(everything, per, "po"):
        vendor = Vendor(f"V-9{len(vendors):04d}", f"Vendor {len(vendors)} (new)", "DE",
                        gen.rng.choice(["pending", "blocked"]))
        vendors.append(vendor)
        orders[i] = _settle(gen, orders[i]._replace(vendor=vendor.id, contract=None, currency=BASE_CURRENCY))
        gen.record(CATEGORY, "unapproved_vendor", orders[i].id)
    for i in gen.pick(everything, per, "po"):
        value = orders[i].qty * orders[i].unit_price
        orders[i] = orders[i]._replace(requisition_amount=round(value * gen.rng.uniform(0.6, 0.85), 2))
        gen.record(CATEGORY, "po_over_budget", orders[i].id)
    for i in gen.pick(everything, per, "po"):
        po = orders[i]
        target = gen.rng.uniform(1.3, 4.0) * APPROVAL_LIMIT
        qty = float(int(target / (po.unit_price * gen.rate(po.currency, po.order_date))) + 1)
        orders[i] = _settle(gen, po._replace(qty=qty))._replace(approved_by=None)
        gen.record(CATEGORY, "missing_approval", orders[i].id)
    for i in gen.pick(with_contract, per, "po"):
        current = next(c for c in contracts if c.id == orders[i].contract)
        ended = orders[i].order_date - timedelta(days=gen.rng.randint(10, 100))
        expired = current._replace(id=f"C-9{len(contracts):05d}", valid_from=ended - timedelta(days=365),
                                   valid_to=ended)
        contracts.append(expired)
        orders[i] = orders[i]._replace(contract=expired.id)
        gen.record(CATEGORY, "expired_contract", orders[i].id)
    for i in gen.pick(with_contract, per, "po"):
        price = round(orders[i].unit_price * gen.rng.uniform(1.12, 1.3), 2)
        orders[i] = _settle(gen, orders[i]._replace(unit_price=price))
        gen.record(CATEGORY, "price_variance", orders[i].id)
