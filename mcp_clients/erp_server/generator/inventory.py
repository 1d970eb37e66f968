"""Inventory: stock of every material in every plant, with reorder points, expiry dates and counts.

Clean stock covers the open sales demand plus a buffer, stays under its maximum, moved within 60 days,
expires no earlier than in 30 days, and counts agree with the book within one unit. Stock-outs and
negative stock are planted only where nothing is on order, so they never also show up as orders short
of stock; a shortage is planted by lowering stock below the open demand, not to zero.
"""

from __future__ import annotations

from datetime import timedelta

from mcp_clients.erp_contract import InventoryItem
from mcp_clients.erp_server.generator.common import AS_OF, PLANTS, Gen
from mcp_clients.erp_server.generator.sales import open_demand

CATEGORY = "inventory"


def make_inventory(gen: Gen) -> None:
    demand = open_demand(gen)
    items: list[InventoryItem] = []
    for material in [*gen.finished, *gen.raw]:
        for plant in PLANTS:
            need = demand.get((material, plant), 0.0)
            reorder = float(gen.rng.randint(10, 100)) if gen.rng.random() < 0.9 else 0.0
            on_hand = float(round(need + reorder * gen.rng.uniform(1.2, 3.0) + gen.rng.randint(1, 50)))
            expiry = gen.day(30, 400) if gen.rng.random() < 0.3 else None
            count_date = count_book = count_qty = None
            if gen.rng.random() < 0.3:
                count_date = gen.day(-90, 0)
                count_book = float(gen.rng.randint(5, 800))
                count_qty = count_book - 1 if count_book >= 100 and gen.rng.random() < 0.1 else count_book
            items.append(InventoryItem(
                f"{material}/{plant}", material, plant, on_hand, reorder,
                float(round(on_hand * gen.rng.uniform(1.0, 1.4))), gen.material_cost[material],
                gen.day(-60, 0), expiry, count_date, count_book, count_qty,
            ))
    _plant(gen, items, demand)
    gen.tables["inventory"] = items


def _plant(gen: Gen, items: list[InventoryItem], demand: dict[tuple[str, str], float]) -> None:
    per = gen.plants_per_detector()
    idle = [i for i, it in enumerate(items) if demand.get((it.material, it.plant), 0.0) == 0 and it.reorder_point]
    everything = list(range(len(items)))
    for i in gen.pick(idle, per, "stock"):
        items[i] = items[i]._replace(on_hand=0.0)
        gen.record(CATEGORY, "stock_out", items[i].id)
    for i in gen.pick(idle, per, "stock"):
        items[i] = items[i]._replace(on_hand=-float(gen.rng.randint(1, 20)))
        gen.record(CATEGORY, "negative_stock", items[i].id)
    for i in gen.pick(everything, per, "stock"):
        items[i] = items[i]._replace(on_hand=float(round(items[i].max_stock * gen.rng.uniform(1.8, 3.0))))
        gen.record(CATEGORY, "overstock", items[i].id)
    for i in gen.pick(everything, per, "stock"):
        items[i] = items[i]._replace(last_movement=gen.day(-500, -200))
        gen.record(CATEGORY, "slow_mover", items[i].id)
    for i in gen.pick(everything, per, "stock"):
        items[i] = items[i]._replace(expiry=gen.day(-120, -1))
        gen.record(CATEGORY, "expired_stock", items[i].id)
    for i in gen.pick(everything, per, "stock"):
        book = float(gen.rng.randint(20, 800))
        items[i] = items[i]._replace(count_date=gen.day(-60, -1), count_book_qty=book,
                                     count_qty=float(round(book * gen.rng.uniform(0.7, 0.9))))
        gen.record(CATEGORY, "count_discrepancy", items[i].id)
    short = [i for i, it in enumerate(items) if demand.get((it.material, it.plant), 0.0) >= 4]
    for i in gen.pick(short, per, "stock"):
        need = demand[(items[i].material, items[i].plant)]
        items[i] = items[i]._replace(on_hand=float(int(need // 2)), last_movement=AS_OF - timedelta(days=3))
        gen.record("order_fulfilment", "short_of_stock", items[i].id)
