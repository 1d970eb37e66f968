"""The contract of an ERP data server: its two tools, its tables and the shape of their rows.

The bundled server (`mcp_clients.erp_server`) and the analysis both speak it, so a real connector (an SAP
ABAP ADT bridge, say) only has to serve the same tools. Rows travel as JSON arrays in the order of the
NamedTuple fields, half the bytes of objects; a page whose columns differ from these fields is refused, so a
server speaking another version of the contract fails loudly instead of being misread.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date
from typing import Any, Generic, Literal, NamedTuple, TypeVar

from pydantic import BaseModel, ConfigDict, Field

DESCRIBE_TOOL = "erp_describe"
READ_TOOL = "erp_read"
MAX_PAGE = 20_000


class FxRate(NamedTuple):
    period: str  # YYYY-MM, the monthly average rate used for postings
    currency: str
    rate: float  # one unit of `currency` in the base currency


class TaxCode(NamedTuple):
    code: str
    rate: float


class GlBalance(NamedTuple):
    id: str
    cost_centre: str
    account: str
    period: str
    budget: float
    actual: float


class OpenItem(NamedTuple):
    id: str
    account: str
    partner: str
    posting_date: date
    currency: str
    amount_doc: float
    amount_base: float
    reconciled: bool


class Vendor(NamedTuple):
    id: str
    name: str
    country: str
    status: Literal["approved", "pending", "blocked"]


class Contract(NamedTuple):
    id: str
    vendor: str
    material: str
    price: float
    currency: str
    valid_from: date
    valid_to: date


class PurchaseOrder(NamedTuple):
    id: str
    vendor: str
    contract: str | None
    cost_centre: str
    material: str
    plant: str
    qty: float
    unit_price: float
    currency: str
    order_date: date
    requisition_amount: float
    approved_by: str | None


class GoodsReceipt(NamedTuple):
    id: str
    po: str
    qty: float
    receipt_date: date


class Invoice(NamedTuple):
    id: str
    vendor: str
    vendor_ref: str
    po: str | None
    invoice_date: date
    qty: float
    unit_price: float
    net: float
    tax_code: str
    tax: float
    currency: str


class InventoryItem(NamedTuple):
    id: str
    material: str
    plant: str
    on_hand: float
    reorder_point: float
    max_stock: float
    unit_cost: float
    last_movement: date
    expiry: date | None
    count_date: date | None
    count_book_qty: float | None
    count_qty: float | None


class Customer(NamedTuple):
    id: str
    name: str
    credit_limit: float
    open_ar: float


class SalesOrder(NamedTuple):
    id: str
    customer: str
    material: str
    plant: str
    qty: float
    unit_price: float
    order_date: date
    requested_date: date


class Delivery(NamedTuple):
    id: str
    sales_order: str
    qty: float
    ship_date: date


class WorkCentre(NamedTuple):
    id: str
    plant: str
    capacity_hours: float  # per week
    hourly_rate: float


class ProductionOrder(NamedTuple):
    id: str
    material: str
    plant: str
    work_centre: str
    qty: float
    hours: float
    unit_cost: float
    start_date: date
    due_date: date
    status: Literal["planned", "released", "completed"]
    completed_date: date | None


class Component(NamedTuple):
    id: str
    production_order: str
    material: str
    required_qty: float
    available_qty: float
    unit_cost: float


class QcResult(NamedTuple):
    id: str
    production_order: str
    inspected_qty: float
    rejected_qty: float
    result: Literal["pass", "fail"]


TABLES: dict[str, type[tuple[Any, ...]]] = {
    "fx_rates": FxRate,
    "tax_codes": TaxCode,
    "gl_balances": GlBalance,
    "open_items": OpenItem,
    "vendors": Vendor,
    "contracts": Contract,
    "purchase_orders": PurchaseOrder,
    "goods_receipts": GoodsReceipt,
    "invoices": Invoice,
    "inventory": InventoryItem,
    "customers": Customer,
    "sales_orders": SalesOrder,
    "deliveries": Delivery,
    "work_centres": WorkCentre,
    "production_orders": ProductionOrder,
    "production_components": Component,
    "qc_results": QcResult,
}


def columns(table: str) -> list[str]:
    return list(TABLES[table]._fields)  # type: ignore[attr-defined]


class TableInfo(BaseModel):
    records: int = Field(ge=0)
    columns: list[str]


class ErpDescription(BaseModel):
    """What `erp_describe` answers: whose data it is, as of when, and how much of it there is."""

    tenant_id: str
    company: str
    base_currency: str = Field(pattern=r"^[A-Z]{3}$")
    as_of: date
    records: int = Field(ge=0)
    tables: dict[str, TableInfo]


RowT = TypeVar("RowT")


class Page(BaseModel, Generic[RowT]):
    """What `erp_read` answers: one slice of one table."""

    model_config = ConfigDict(extra="forbid")

    table: str
    columns: list[str]
    offset: int = Field(ge=0)
    total: int = Field(ge=0)
    next_offset: int | None
    rows: list[RowT]


@dataclass
class ErpSnapshot:
    """The tables one analysis reads, as typed rows; tables it did not ask for stay empty."""

    description: ErpDescription
    fx_rates: list[FxRate] = field(default_factory=list)
    tax_codes: list[TaxCode] = field(default_factory=list)
    gl_balances: list[GlBalance] = field(default_factory=list)
    open_items: list[OpenItem] = field(default_factory=list)
    vendors: list[Vendor] = field(default_factory=list)
    contracts: list[Contract] = field(default_factory=list)
    purchase_orders: list[PurchaseOrder] = field(default_factory=list)
    goods_receipts: list[GoodsReceipt] = field(default_factory=list)
    invoices: list[Invoice] = field(default_factory=list)
    inventory: list[InventoryItem] = field(default_factory=list)
    customers: list[Customer] = field(default_factory=list)
    sales_orders: list[SalesOrder] = field(default_factory=list)
    deliveries: list[Delivery] = field(default_factory=list)
    work_centres: list[WorkCentre] = field(default_factory=list)
    production_orders: list[ProductionOrder] = field(default_factory=list)
    production_components: list[Component] = field(default_factory=list)
    qc_results: list[QcResult] = field(default_factory=list)
    loaded: dict[str, int] = field(default_factory=dict)

    def put(self, table: str, rows: list[Any]) -> None:
        if table not in TABLES:
            raise KeyError(table)
        setattr(self, table, rows)
        self.loaded[table] = len(rows)

    def count(self, *tables: str) -> int:
        return sum(self.loaded.get(table, 0) for table in tables)
