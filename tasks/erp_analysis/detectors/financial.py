"""Financial: budget overruns and underspends, unreconciled items by age, FX and tax discrepancies."""

from __future__ import annotations

from mcp_clients.erp_contract import ErpSnapshot
from schemas.erp import ErpCategory, Finding, Severity
from tasks.erp_analysis.detectors.common import Collector, DetectContext, money

TABLES = ("gl_balances", "open_items", "fx_rates", "tax_codes", "invoices")

OVERRUN = 0.10  # actual above budget by more than this share
UNDERSPEND = 0.50  # actual below budget by more than this share: planning error or costs not yet posted
UNRECONCILED_DAYS = 60
FX_TOLERANCE = 0.005  # share of the expected base amount ...
FX_MINIMUM = 1.0  # ... and never less than this, so cent rounding is no discrepancy
TAX_TOLERANCE = 0.02


def detect(snap: ErpSnapshot, ctx: DetectContext) -> list[Finding]:
    out = Collector(ErpCategory.financial, ctx)
    _budgets(snap, out)
    _open_items(snap, ctx, out)
    _tax(snap, ctx, out)
    return out.findings


def _budgets(snap: ErpSnapshot, out: Collector) -> None:
    base = snap.description.base_currency
    for g in snap.gl_balances:
        where = f"Cost centre {g.cost_centre}, account {g.account}, {g.period}"
        if g.actual > g.budget * (1 + OVERRUN):
            share = (g.actual / g.budget - 1) * 100 if g.budget else 100.0
            out.add("budget_overrun", g.id, g.actual - g.budget,
                    f"{where}: spent {money(g.actual, base)} against a budget of {money(g.budget, base)} "
                    f"(+{share:.0f}%).", [g.id])
        elif g.actual < g.budget * (1 - UNDERSPEND):
            out.add("budget_underspend", g.id, g.budget - g.actual,
                    f"{where}: spent only {money(g.actual, base)} of {money(g.budget, base)}; "
                    "the budget was overstated or costs are not yet posted.", [g.id])


def _open_items(snap: ErpSnapshot, ctx: DetectContext, out: Collector) -> None:
    base = snap.description.base_currency
    for item in snap.open_items:
        age = (ctx.as_of - item.posting_date).days
        if not item.reconciled and age > UNRECONCILED_DAYS:
            floor = Severity.high if age > 180 else Severity.medium if age > 90 else Severity.low
            out.add("unreconciled_item", item.id, item.amount_base,
                    f"Item {item.id} on account {item.account} ({money(item.amount_base, base)}) has been "
                    f"unreconciled for {age} days.", [item.id], floor)
        if item.currency == base:
            continue
        rate = ctx.fx.rate(item.currency, item.posting_date)
        if rate is None:
            out.add("fx_discrepancy", item.id, item.amount_base,
                    f"Item {item.id} is in {item.currency} but the ERP has no rate for it in "
                    f"{item.posting_date:%Y-%m}; its base amount cannot be checked.", [item.id])
            continue
        expected = item.amount_doc * rate
        gap = item.amount_base - expected
        if abs(gap) > max(FX_MINIMUM, FX_TOLERANCE * abs(expected)):
            out.add("fx_discrepancy", item.id, gap,
                    f"Item {item.id}: {money(item.amount_doc, item.currency)} at the {item.posting_date:%Y-%m} "
                    f"rate is {money(expected, base)}, but {money(item.amount_base, base)} was posted.",
                    [item.id])


def _tax(snap: ErpSnapshot, ctx: DetectContext, out: Collector) -> None:
    rates = {t.code: t.rate for t in snap.tax_codes}
    for inv in snap.invoices:
        rate = rates.get(inv.tax_code)
        expected = round(inv.net * rate, 2) if rate is not None else 0.0
        gap = inv.tax - expected
        if rate is not None and abs(gap) <= TAX_TOLERANCE:
            continue
        gap_base = ctx.fx.to_base(gap, inv.currency, inv.invoice_date)
        detail = (f"tax code {inv.tax_code} is unknown" if rate is None
                  else f"tax should be {money(expected, inv.currency)} ({rate:.0%} of "
                       f"{money(inv.net, inv.currency)}) but is {money(inv.tax, inv.currency)}")
        out.add("tax_error", inv.id, gap if gap_base is None else gap_base, f"Invoice {inv.id}: {detail}.",
                [inv.id])
