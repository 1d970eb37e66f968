"""Production: work centres, production orders, their components and quality inspections.

Orders due before the as-of date were completed on time and inspected with at most 2% rejects; open orders
have their components available. Each work centre's weekly capacity is set from its busiest week of open
orders with at least 15% headroom, so overload appears only where hours are planted.
"""

from __future__ import annotations

import math
from collections import defaultdict
from datetime import date, timedelta

from mcp_clients.erp_contract import Component, ProductionOrder, QcResult, WorkCentre
from mcp_clients.erp_server.generator.common import AS_OF, PLANTS, Gen

CATEGORY = "production"


def week_of(day: date) -> str:
    year, week, _ = day.isocalendar()
    return f"{year}-W{week:02d}"


def make_production(gen: Gen) -> None:
    centres = [WorkCentre(f"WC-{n:03d}", PLANTS[n % len(PLANTS)], 0.0, gen.money(40, 120))
               for n in range(1, max(3, gen.records // 5_000) + 1)]
    orders: list[ProductionOrder] = []
    components: list[Component] = []
    qc: list[QcResult] = []
    for n in range(1, gen.share(0.04, 15) + 1):
        wc = gen.rng.choice(centres)
        material = gen.rng.choice(gen.finished)
        qty = float(gen.rng.randint(10, 500))
        start = gen.day(-150, 60)
        due = start + timedelta(days=gen.rng.randint(3, 20))
        order = ProductionOrder(f"PR-{n:07d}", material, wc.plant, wc.id, qty,
                                round(qty * gen.rng.uniform(0.05, 0.3) + 1, 1),
                                round(gen.material_cost[material] * 0.8, 2), start, due, "planned", None)
        if due < AS_OF:
            done = max(start, due - timedelta(days=gen.rng.randint(0, 3)))
            order = order._replace(status="completed", completed_date=done)
            qc.append(QcResult(f"QC-{len(qc) + 1:07d}", order.id, qty,
                               float(int(qty * gen.rng.uniform(0, 0.02))), "pass"))
        elif start <= AS_OF:
            order = order._replace(status="released")
        orders.append(order)
        for material_in in gen.rng.sample(gen.raw, min(len(gen.raw), gen.rng.randint(1, 3))):
            need = float(round(qty * gen.rng.uniform(0.5, 3.0)))
            have = need if order.status == "completed" else need + gen.rng.randint(0, 100)
            components.append(Component(f"PC-{len(components) + 1:07d}", order.id, material_in, need, have,
                                        gen.material_cost[material_in]))
    load: dict[tuple[str, str], float] = defaultdict(float)
    for o in orders:
        if o.status != "completed":
            load[(o.work_centre, week_of(o.start_date))] += o.hours
    busiest = {wc.id: max((h for (w, _), h in load.items() if w == wc.id), default=0.0) for wc in centres}
    centres = [wc._replace(capacity_hours=float(max(40, math.ceil(busiest[wc.id] / gen.rng.uniform(0.6, 0.85)))))
               for wc in centres]
    _plant(gen, centres, orders, components, qc, load)
    gen.tables.update(work_centres=centres, production_orders=orders, production_components=components,
                      qc_results=qc)


def _plant(gen: Gen, centres: list[WorkCentre], orders: list[ProductionOrder], components: list[Component],
           qc: list[QcResult], load: dict[tuple[str, str], float]) -> None:
    per = gen.plants_per_detector()
    open_orders = [i for i, o in enumerate(orders) if o.status != "completed"]
    for i in gen.pick(open_orders, per, "pr"):
        k = next(k for k, c in enumerate(components) if c.production_order == orders[i].id)
        components[k] = components[k]._replace(
            available_qty=float(int(components[k].required_qty * gen.rng.uniform(0.2, 0.7))))
        gen.record(CATEGORY, "material_shortage", orders[i].id)
    for k in gen.pick(list(range(len(qc))), per, "qc"):
        rejected = float(int(qc[k].inspected_qty * gen.rng.uniform(0.08, 0.3)))
        qc[k] = qc[k]._replace(rejected_qty=rejected, result="fail")
        gen.record(CATEGORY, "qc_failure", qc[k].production_order)
    capacity = {wc.id: wc.capacity_hours for wc in centres}
    weeks: dict[str, int] = {}
    for i in gen.pick(open_orders, per, "pr"):
        key = f"{orders[i].work_centre}/{week_of(orders[i].start_date)}"
        if key in weeks:
            continue
        weeks[key] = i
        slot = (orders[i].work_centre, week_of(orders[i].start_date))
        extra = capacity[orders[i].work_centre] * gen.rng.uniform(1.2, 1.5) - load[slot]
        orders[i] = orders[i]._replace(hours=round(orders[i].hours + extra, 1))
        gen.record(CATEGORY, "capacity_overload", key)
    released = [i for i in open_orders if orders[i].start_date < AS_OF]
    for i in gen.pick(released, per, "pr"):
        due = max(orders[i].start_date, AS_OF - timedelta(days=gen.rng.randint(1, 30)))
        orders[i] = orders[i]._replace(due_date=due)
        gen.record(CATEGORY, "late_production", orders[i].id)
    done = [i for i, o in enumerate(orders) if o.status == "completed"]
    for i in gen.pick(done, per, "pr"):
        finished = min(AS_OF, orders[i].due_date + timedelta(days=gen.rng.randint(3, 20)))
        orders[i] = orders[i]._replace(completed_date=finished)
        gen.record(CATEGORY, "late_production", orders[i].id)
