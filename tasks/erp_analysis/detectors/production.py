"""Production: material shortages, QC failures, work centres over capacity and late production orders."""

from __future__ import annotations

from collections import defaultdict
from datetime import date

from mcp_clients.erp_contract import Component, ErpSnapshot, ProductionOrder
from schemas.erp import ErpCategory, Finding, Severity
from tasks.erp_analysis.detectors.common import Collector, DetectContext

TABLES = ("work_centres", "production_orders", "production_components", "qc_results")

REJECT_TOLERANCE = 0.05


def week_of(day: date) -> str:
    year, week, _ = day.isocalendar()
    return f"{year}-W{week:02d}"


def detect(snap: ErpSnapshot, ctx: DetectContext) -> list[Finding]:
    out = Collector(ErpCategory.production, ctx)
    orders = {o.id: o for o in snap.production_orders}
    _shortages(snap.production_components, orders, out)
    for q in snap.qc_results:
        order = orders.get(q.production_order)
        rate = q.rejected_qty / q.inspected_qty if q.inspected_qty else 0.0
        if q.result == "fail" or rate > REJECT_TOLERANCE:
            cost = order.unit_cost if order else 0.0
            out.add("qc_failure", q.production_order, q.rejected_qty * cost,
                    f"Production order {q.production_order}: inspection {q.id} rejected {q.rejected_qty:g} of "
                    f"{q.inspected_qty:g} ({rate:.0%}).", [q.production_order, q.id], Severity.medium)
    _capacity(snap, out)
    for o in snap.production_orders:
        late_open = o.status != "completed" and o.due_date < ctx.as_of
        late_done = o.status == "completed" and o.completed_date is not None and o.completed_date > o.due_date
        if late_open or late_done:
            how = (f"is still {o.status}" if late_open else f"was completed on {o.completed_date}")
            out.add("late_production", o.id, o.qty * o.unit_cost,
                    f"Production order {o.id} ({o.qty:g} x {o.material}) was due on {o.due_date} and {how}.",
                    [o.id])
    return out.findings


def _shortages(components: list[Component], orders: dict[str, ProductionOrder], out: Collector) -> None:
    short: dict[str, list[Component]] = defaultdict(list)
    for c in components:
        order = orders.get(c.production_order)
        if c.available_qty < c.required_qty and (order is None or order.status != "completed"):
            short[c.production_order].append(c)
    for order_id, lines in short.items():
        value = sum((c.required_qty - c.available_qty) * c.unit_cost for c in lines)
        names = ", ".join(f"{c.material} ({c.available_qty:g} of {c.required_qty:g})" for c in lines)
        out.add("material_shortage", order_id, value,
                f"Production order {order_id} lacks components: {names}.", [order_id, *(c.id for c in lines)],
                Severity.medium)


def _capacity(snap: ErpSnapshot, out: Collector) -> None:
    load: dict[tuple[str, str], list[ProductionOrder]] = defaultdict(list)
    for o in snap.production_orders:
        if o.status != "completed":
            load[(o.work_centre, week_of(o.start_date))].append(o)
    centres = {wc.id: wc for wc in snap.work_centres}
    for (wc_id, week), planned in sorted(load.items()):
        wc = centres.get(wc_id)
        hours = sum(o.hours for o in planned)
        if wc is None or hours <= wc.capacity_hours:
            continue
        load_share = f" ({hours / wc.capacity_hours:.0%})" if wc.capacity_hours > 0 else ""
        out.add("capacity_overload", f"{wc_id}/{week}", (hours - wc.capacity_hours) * wc.hourly_rate,
                f"Work centre {wc_id} is loaded {hours:,.0f} h in {week} against a capacity of "
                f"{wc.capacity_hours:,.0f} h{load_share}.", [wc_id, *(o.id for o in planned)])
