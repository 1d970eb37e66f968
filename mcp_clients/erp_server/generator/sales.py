"""Sales: customers with credit limits, sales orders and their deliveries.

Clean orders due before the as-of date were shipped in full and on time; orders due later may be open or
partly shipped. Credit limits are set last, from each customer's exposure after the planted exceptions,
so that only planted customers exceed theirs. Inventory is made afterwards to cover the open demand.
"""

from __future__ import annotations

from collections import defaultdict
from datetime import date, timedelta

from mcp_clients.erp_contract import Customer, Delivery, SalesOrder
from mcp_clients.erp_server.generator.common import AS_OF, PLANTS, Gen

CATEGORY = "order_fulfilment"


def _ship(gen: Gen, order: SalesOrder, deliveries: list[Delivery], qty: float, latest: date) -> None:
    earliest = order.order_date + timedelta(days=1)
    span = max(0, (min(latest, AS_OF) - earliest).days)
    day = earliest + timedelta(days=gen.rng.randint(0, span))
    deliveries.append(Delivery(f"DL-{len(deliveries) + 1:07d}", order.id, qty, day))


def make_sales(gen: Gen) -> None:
    customers = [f"CU-{n:05d}" for n in range(1, gen.share(0.011, 5) + 1)]
    orders: list[SalesOrder] = []
    shipments: dict[str, list[float]] = {}
    for n in range(1, gen.share(0.12, 40) + 1):
        material = gen.rng.choice(gen.finished)
        ordered = gen.day(-200, 0)
        order = SalesOrder(f"SO-{n:07d}", gen.rng.choice(customers), material, gen.rng.choice(PLANTS),
                           float(gen.rng.randint(1, 100)),
                           round(gen.material_cost[material] * gen.rng.uniform(1.3, 2.0), 2), ordered,
                           ordered + timedelta(days=gen.rng.randint(7, 45)))
        orders.append(order)
        roll = gen.rng.random()
        if order.requested_date < AS_OF:
            split = order.qty >= 2 and roll < 0.2
            shipments[order.id] = [order.qty // 2, order.qty - order.qty // 2] if split else [order.qty]
        elif roll < 0.2 and order.qty >= 2:
            shipments[order.id] = [order.qty // 2]
        elif roll < 0.4:
            shipments[order.id] = [order.qty]
    _plant(gen, orders, shipments)
    gen.tables["sales_orders"] = orders
    _finish_customers(gen, customers, orders)


def _plant(gen: Gen, orders: list[SalesOrder], shipments: dict[str, list[float]]) -> None:
    per = gen.plants_per_detector()
    due = [i for i, o in enumerate(orders) if o.requested_date <= AS_OF - timedelta(days=10) and o.qty >= 2]
    deliveries: list[Delivery] = []
    late: set[str] = set()
    for i in gen.pick(due, per, "so"):
        shipments[orders[i].id] = [max(1.0, float(int(orders[i].qty * gen.rng.uniform(0.3, 0.7))))]
        gen.record(CATEGORY, "backorder", orders[i].id)
    for i in gen.pick(due, per, "so"):
        late.add(orders[i].id)
        gen.record(CATEGORY, "late_delivery", orders[i].id)
    for i in gen.pick(due, per, "so"):
        shipments.pop(orders[i].id, None)
        gen.record(CATEGORY, "late_delivery", orders[i].id)
    for order in orders:
        for qty in shipments.get(order.id, []):
            if order.id in late:
                shipped = min(AS_OF, order.requested_date + timedelta(days=gen.rng.randint(5, 30)))
                deliveries.append(Delivery(f"DL-{len(deliveries) + 1:07d}", order.id, qty, shipped))
            else:
                _ship(gen, order, deliveries, qty, order.requested_date)
    gen.tables["deliveries"] = deliveries


def open_demand(gen: Gen) -> dict[tuple[str, str], float]:
    """Quantity ordered and not yet shipped, by (material, plant)."""
    shipped: dict[str, float] = defaultdict(float)
    for d in gen.tables["deliveries"]:
        shipped[d.sales_order] += d.qty
    demand: dict[tuple[str, str], float] = defaultdict(float)
    for o in gen.tables["sales_orders"]:
        if o.qty > shipped[o.id]:
            demand[(o.material, o.plant)] += o.qty - shipped[o.id]
    return demand


def _finish_customers(gen: Gen, ids: list[str], orders: list[SalesOrder]) -> None:
    shipped: dict[str, float] = defaultdict(float)
    for d in gen.tables["deliveries"]:
        shipped[d.sales_order] += d.qty
    exposure: dict[str, float] = defaultdict(float)
    for o in orders:
        exposure[o.customer] += max(0.0, o.qty - shipped[o.id]) * o.unit_price
    customers = []
    for cid in ids:
        open_ar = gen.money(0, 40_000)
        exposure[cid] += open_ar
        limit = round(max(exposure[cid] * gen.rng.uniform(1.3, 2.0), 10_000.0), -2)
        customers.append(Customer(cid, f"Customer {cid[3:]}", limit, open_ar))
    exposed = [i for i, c in enumerate(customers) if exposure[c.id] > 2_000]
    for i in gen.pick(exposed, gen.plants_per_detector(), "cu"):
        limit = round(exposure[customers[i].id] * gen.rng.uniform(0.5, 0.85), -2)
        customers[i] = customers[i]._replace(credit_limit=limit)
        gen.record(CATEGORY, "credit_limit_exceeded", customers[i].id)
    gen.tables["customers"] = customers
