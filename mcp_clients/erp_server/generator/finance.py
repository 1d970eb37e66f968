"""Finance: FX rates, tax codes, budgets and actuals by cost centre, and open items with their age.

Clean data keeps actuals within -18%..+4% of budget, reconciles every item older than 30 days and books
foreign items at exactly the month's rate, so the thresholds of the detectors (+10%, -50%, 60 days, 0.5%)
are only crossed where an exception is planted.
"""

from __future__ import annotations

from mcp_clients.erp_contract import FxRate, GlBalance, OpenItem, TaxCode
from mcp_clients.erp_server.generator.common import AS_OF, BASE_CURRENCY, FOREIGN_RATES, PERIODS, Gen

ACCOUNTS = ["610000", "620000", "630000", "640000", "650000", "660000", "670000", "680000"]
TAX_CODES = [TaxCode("V0", 0.0), TaxCode("V7", 0.07), TaxCode("V19", 0.19), TaxCode("V20", 0.20)]
TAX_RATES = {t.code: t.rate for t in TAX_CODES}
CATEGORY = "financial"


def make_rates(gen: Gen) -> None:
    rows: list[FxRate] = []
    for currency, base in FOREIGN_RATES.items():
        level = base
        for period in PERIODS:
            level = round(level * gen.rng.uniform(0.98, 1.02), 6)
            gen.fx[(period, currency)] = level
            rows.append(FxRate(period, currency, level))
    gen.tables["fx_rates"] = rows
    gen.tables["tax_codes"] = list(TAX_CODES)


def make_budgets(gen: Gen) -> None:
    centres = max(1, round(gen.records * 0.065 / (len(ACCOUNTS) * len(PERIODS))))
    rows: list[GlBalance] = []
    for c in range(1, centres + 1):
        for account in ACCOUNTS:
            for period in PERIODS:
                budget = gen.money(5_000, 200_000)
                actual = round(budget * gen.rng.uniform(0.82, 1.04), 2)
                rows.append(GlBalance(f"GL-{len(rows) + 1:07d}", f"CC-{c:04d}", account, period, budget, actual))
    per = gen.plants_per_detector()
    for i in gen.pick(list(range(len(rows))), per, "gl"):
        rows[i] = rows[i]._replace(actual=round(rows[i].budget * gen.rng.uniform(1.2, 1.6), 2))
        gen.record(CATEGORY, "budget_overrun", rows[i].id)
    for i in gen.pick(list(range(len(rows))), per, "gl"):
        rows[i] = rows[i]._replace(actual=round(rows[i].budget * gen.rng.uniform(0.1, 0.4), 2))
        gen.record(CATEGORY, "budget_underspend", rows[i].id)
    gen.tables["gl_balances"] = rows


def make_open_items(gen: Gen) -> None:
    foreign = list(FOREIGN_RATES)
    rows: list[OpenItem] = []
    for n in range(1, gen.share(0.13, 40) + 1):
        posted = gen.day(-364, 0)
        currency = BASE_CURRENCY if gen.rng.random() < 0.7 else gen.rng.choice(foreign)
        amount = gen.money(50, 50_000) if currency != "JPY" else gen.money(10_000, 5_000_000)
        base = round(amount * gen.rate(currency, posted), 2)
        reconciled = (AS_OF - posted).days > 30 or gen.rng.random() < 0.5
        account = gen.rng.choice(["140000", "160000", "113100"])
        rows.append(OpenItem(f"OI-{n:07d}", account, f"BP-{gen.rng.randint(1, 999):04d}", posted, currency,
                             amount, base, reconciled))
    per = gen.plants_per_detector()
    old = [i for i, r in enumerate(rows) if (AS_OF - r.posting_date).days > 75]
    for i in gen.pick(old, per, "oi"):
        rows[i] = rows[i]._replace(reconciled=False)
        gen.record(CATEGORY, "unreconciled_item", rows[i].id)
    abroad = [i for i, r in enumerate(rows) if r.currency != BASE_CURRENCY and r.amount_base > 500]
    for i in gen.pick(abroad, per, "oi"):
        rows[i] = rows[i]._replace(amount_base=round(rows[i].amount_base * gen.rng.uniform(1.03, 1.1), 2))
        gen.record(CATEGORY, "fx_discrepancy", rows[i].id)
    gen.tables["open_items"] = rows


def tax_due(net: float, code: str) -> float:
    return round(net * TAX_RATES[code], 2)
