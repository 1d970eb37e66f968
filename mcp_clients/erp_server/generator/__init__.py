"""A synthetic ERP data set with known exceptions, generated from a seed.

It stands in for a real ERP (the seed scenario names an SAP system behind an ABAP ADT MCP server) in the
demo and the tests. `generate(..., plant=True)` returns the list of exceptions it planted: the detectors
must find exactly those, and nothing when `plant=False`.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from typing import Any

from mcp_clients.erp_server.generator.common import AS_OF, BASE_CURRENCY, Gen, Planted, make_materials, mixed_seed
from mcp_clients.erp_server.generator.finance import make_budgets, make_open_items, make_rates
from mcp_clients.erp_server.generator.inventory import make_inventory
from mcp_clients.erp_server.generator.invoicing import make_receipts_and_invoices
from mcp_clients.erp_server.generator.procurement import make_orders, make_vendors
from mcp_clients.erp_server.generator.production import make_production
from mcp_clients.erp_server.generator.sales import make_sales

MIN_RECORDS = 1_000
MAX_RECORDS = 200_000


@dataclass(frozen=True)
class Dataset:
    tenant_id: str
    company: str
    base_currency: str
    as_of: date
    tables: dict[str, list[Any]]
    planted: list[Planted]

    @property
    def records(self) -> int:
        return sum(len(rows) for rows in self.tables.values())


def generate(records: int = 10_000, seed: int = 1, tenant_id: str = "demo", *, plant: bool = True) -> Dataset:
    """About `records` documents across all tables; the same arguments always give the same data."""
    if not MIN_RECORDS <= records <= MAX_RECORDS:
        raise ValueError(f"records must be between {MIN_RECORDS} and {MAX_RECORDS}, not {records}")
    gen = Gen(records=records, seed=mixed_seed(seed, tenant_id), plant=plant)
    make_materials(gen)
    make_rates(gen)
    make_budgets(gen)
    make_open_items(gen)
    make_vendors(gen)
    make_orders(gen)
    make_receipts_and_invoices(gen)
    make_sales(gen)
    make_inventory(gen)
    make_production(gen)
    company = f"{tenant_id.replace('-', ' ').title()} GmbH"
    return Dataset(tenant_id, company, BASE_CURRENCY, AS_OF, gen.tables, gen.planted)


__all__ = ["Dataset", "Planted", "generate"]
