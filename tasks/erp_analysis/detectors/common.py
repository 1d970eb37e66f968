"""What every detector shares: the as-of date, currency conversion, severity and the finding collector.

Detectors measure amounts in the ERP's base currency (thresholds and severities are defined there, so a
finding's weight does not depend on who reads the report) and the collector converts them to the report
currency once, at the latest monthly rate.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date

from mcp_clients.erp_contract import FxRate
from schemas.erp import ErpCategory, Finding, Severity

MAX_DOCUMENTS = 25
"""Documents listed per finding; a capacity overload can rest on hundreds of orders."""

_SEVERITY_STEPS = ((100_000.0, Severity.critical), (10_000.0, Severity.high), (1_000.0, Severity.medium))
_RANK = {s: n for n, s in enumerate(Severity)}


def severity_of(amount_base: float, floor: Severity = Severity.low) -> Severity:
    """By amount at stake in the base currency, never below the detector's floor."""
    found = next((s for limit, s in _SEVERITY_STEPS if amount_base >= limit), Severity.low)
    return found if _RANK[found] >= _RANK[floor] else floor


def money(amount: float, currency: str) -> str:
    return f"{amount:,.2f} {currency}"


def period_of(day: date) -> str:
    return f"{day.year}-{day.month:02d}"


class FxTable:
    """Monthly average rates: one unit of a currency in the base currency, by (YYYY-MM, currency)."""

    def __init__(self, rates: list[FxRate], base: str) -> None:
        self.base = base
        self._rates = {(r.period, r.currency): r.rate for r in rates}
        latest: dict[str, tuple[str, float]] = {}
        for r in rates:
            if r.currency not in latest or r.period > latest[r.currency][0]:
                latest[r.currency] = (r.period, r.rate)
        self._latest = {currency: rate for currency, (_, rate) in latest.items()}

    def rate(self, currency: str, day: date) -> float | None:
        if currency == self.base:
            return 1.0
        return self._rates.get((period_of(day), currency))

    def to_base(self, amount: float, currency: str, day: date) -> float | None:
        rate = self.rate(currency, day)
        return None if rate is None else amount * rate

    def latest(self, currency: str) -> float | None:
        return 1.0 if currency == self.base else self._latest.get(currency)


@dataclass(frozen=True)
class DetectContext:
    """The frame of one analysis: as of when, in which currencies, at which rates."""

    as_of: date
    fx: FxTable
    currency: str
    factor: float = 1.0  # report currency per unit of base currency

    @classmethod
    def for_report(cls, as_of: date, fx: FxTable, wanted: str) -> tuple[DetectContext, str | None]:
        """Report in `wanted` where the ERP has a rate for it, else in the base currency (with a note why)."""
        rate = fx.latest(wanted)
        if rate:
            return cls(as_of, fx, wanted, 1.0 / rate), None
        note = f"No FX rate for {wanted} in the ERP; amounts are in the base currency {fx.base}."
        return cls(as_of, fx, fx.base, 1.0), note


@dataclass
class Collector:
    """Turns a detector's raw hits into findings in the report currency."""

    category: ErpCategory
    ctx: DetectContext
    findings: list[Finding] = field(default_factory=list)

    def add(self, detector: str, key: str, amount_base: float, summary: str, documents: list[str],
            floor: Severity = Severity.low) -> None:
        amount_base = abs(amount_base)
        self.findings.append(Finding(
            category=self.category, detector=detector, key=key, severity=severity_of(amount_base, floor),
            amount=round(amount_base * self.ctx.factor, 2), currency=self.ctx.currency, summary=summary,
            documents=list(dict.fromkeys(documents))[:MAX_DOCUMENTS],
        ))
