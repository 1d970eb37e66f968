"""Order fulfilment: orders short of stock, backorders, late deliveries and customers over their credit limit."""

from __future__ import annotations

from collections import defaultdict

from mcp_clients.erp_contract import Delivery, ErpSnapshot, SalesOrder
from schemas.erp import ErpCategory, Finding, Severity
from tasks.erp_analysis.detectors.common import Collector, DetectContext, money

TABLES = ("sales_orders", "deliveries", "inventory", "customers")

LATE_GRACE_DAYS = 2


def detect(snap: ErpSnapshot, ctx: DetectContext) -> list[Finding]:
    out = Collector(ErpCategory.order_fulfilment, ctx)
    base = snap.description.base_currency
    by_order: dict[str, list[Delivery]] = defaultdict(list)
    for d in snap.deliveries:
        by_order[d.sales_order].append(d)
    demand: dict[tuple[str, str], list[tuple[SalesOrder, float]]] = defaultdict(list)
    exposure: dict[str, float] = defaultdict(float)
    for o in snap.sales_orders:
        shipped = by_order.get(o.id, [])
        remaining = max(0.0, o.qty - sum(d.qty for d in shipped))
        _timeliness(o, shipped, remaining, ctx, out, base)
        if remaining > 0:
            demand[(o.material, o.plant)].append((o, remaining))
            exposure[o.customer] += remaining * o.unit_price
    _shortages(snap, demand, out)
    for c in snap.customers:
        total = c.open_ar + exposure.get(c.id, 0.0)
        if total > c.credit_limit:
            out.add("credit_limit_exceeded", c.id, total - c.credit_limit,
                    f"Customer {c.id}: open receivables and orders of {money(total, base)} exceed the credit "
                    f"limit of {money(c.credit_limit, base)}.", [c.id], Severity.high)
    return out.findings


def _timeliness(o: SalesOrder, shipped: list[Delivery], remaining: float, ctx: DetectContext, out: Collector,
                base: str) -> None:
    late = [d for d in shipped if (d.ship_date - o.requested_date).days > LATE_GRACE_DAYS]
    if late:
        qty = sum(d.qty for d in late)
        days = max((d.ship_date - o.requested_date).days for d in late)
        out.add("late_delivery", o.id, qty * o.unit_price,
                f"Order {o.id} for {o.customer} was shipped up to {days} days after the requested "
                f"{o.requested_date}.", [o.id, *(d.id for d in late)])
    elif not shipped and o.requested_date < ctx.as_of:
        out.add("late_delivery", o.id, o.qty * o.unit_price,
                f"Order {o.id} for {o.customer} ({money(o.qty * o.unit_price, base)}) was due on "
                f"{o.requested_date} and nothing has shipped.", [o.id])
    if shipped and remaining > 0 and o.requested_date < ctx.as_of:
        out.add("backorder", o.id, remaining * o.unit_price,
                f"Order {o.id} for {o.customer}: {remaining:g} of {o.qty:g} still to ship, due since "
                f"{o.requested_date}.", [o.id, *(d.id for d in shipped)])


def _shortages(snap: ErpSnapshot, demand: dict[tuple[str, str], list[tuple[SalesOrder, float]]],
               out: Collector) -> None:
    stock = {(it.material, it.plant): it for it in snap.inventory}
    for (material, plant), lines in demand.items():
        need = sum(qty for _, qty in lines)
        item = stock.get((material, plant))
        have = max(0.0, item.on_hand) if item else 0.0
        if need <= have:
            continue
        value = sum(o.unit_price * qty for o, qty in lines)
        key = item.id if item else f"{material}/{plant}"
        out.add("short_of_stock", key, value * (need - have) / need,
                f"{material} in {plant}: {len(lines)} open orders need {need:g}, only {have:g} on hand.",
                [key, *(o.id for o, _ in lines)])
