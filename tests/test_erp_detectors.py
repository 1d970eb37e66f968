"""The detectors against the generator's planted exceptions: everything planted is found, nothing else is."""

from __future__ import annotations

from collections import Counter

import pytest

from mcp_clients.erp_contract import TABLES, ErpSnapshot
from mcp_clients.erp_server.generator import Dataset, generate
from mcp_clients.erp_server.server import describe
from schemas.erp import ErpCategory, Severity
from tasks.erp_analysis.detectors import DETECTORS, DetectContext, FxTable, run_detectors, tables_for

pytestmark = pytest.mark.timeout(60)

Hit = tuple[str, str, str]


def snapshot_of(dataset: Dataset) -> ErpSnapshot:
    snap = ErpSnapshot(describe(dataset))
    for name, rows in dataset.tables.items():
        snap.put(name, rows)
    return snap


def analyse(dataset: Dataset, currency: str = "EUR") -> list[Hit]:
    snap = snapshot_of(dataset)
    ctx, _ = DetectContext.for_report(dataset.as_of, FxTable(snap.fx_rates, dataset.base_currency), currency)
    return [(f.category.value, f.detector, f.key) for run in run_detectors(snap, list(ErpCategory), ctx)
            for f in run.findings]


def planted(dataset: Dataset) -> list[Hit]:
    return [(p.category, p.detector, p.key) for p in dataset.planted]


SEEDS = [(1_000, seed, tenant) for seed in range(1, 6) for tenant in ("acme", "globex")] + [
    (5_000, 11, "acme"), (20_000, 12, "initech"),
]


@pytest.mark.parametrize("records, seed, tenant", SEEDS)
def test_every_planted_exception_is_found_and_nothing_else(records: int, seed: int, tenant: str) -> None:
    dataset = generate(records, seed, tenant)
    assert sorted(analyse(dataset)) == sorted(planted(dataset))


@pytest.mark.parametrize("records, seed, tenant", SEEDS)
def test_a_clean_data_set_raises_no_finding(records: int, seed: int, tenant: str) -> None:
    assert analyse(generate(records, seed, tenant, plant=False)) == []


def test_the_planted_exceptions_exercise_every_detector_of_every_category() -> None:
    dataset = generate(3_000, 7, "acme")
    by_category = Counter(p.category for p in dataset.planted)
    detectors = {(p.category, p.detector) for p in dataset.planted}
    assert set(by_category) == {c.value for c in ErpCategory}
    assert len(detectors) == 29
    expected = {
        "financial": {"budget_overrun", "budget_underspend", "unreconciled_item", "fx_discrepancy", "tax_error"},
        "procurement": {"unapproved_vendor", "po_over_budget", "missing_approval", "expired_contract",
                        "price_variance"},
        "inventory": {"stock_out", "overstock", "slow_mover", "expired_stock", "count_discrepancy",
                      "negative_stock"},
        "order_fulfilment": {"short_of_stock", "backorder", "late_delivery", "credit_limit_exceeded"},
        "production": {"material_shortage", "qc_failure", "capacity_overload", "late_production"},
        "invoice_matching": {"price_variance", "quantity_variance", "missing_receipt", "missing_po",
                             "duplicate_invoice"},
    }
    assert {(c, d) for c, names in expected.items() for d in names} == detectors


def test_the_same_seed_and_tenant_give_the_same_data_and_other_tenants_other_data() -> None:
    one, again, other = generate(1_000, 5, "acme"), generate(1_000, 5, "acme"), generate(1_000, 5, "globex")
    assert one.tables == again.tables and one.planted == again.planted
    assert one.tables["invoices"] != other.tables["invoices"]


@pytest.mark.parametrize("records", [1_000, 10_000, 100_000])
def test_the_data_set_has_about_the_requested_size(records: int) -> None:
    dataset = generate(records, 1, "acme")
    assert records * 0.95 <= dataset.records <= max(records * 1.05, 1_150)
    assert set(dataset.tables) == set(TABLES)


def test_findings_carry_documents_severity_and_amount_in_the_tenant_currency() -> None:
    dataset = generate(2_000, 3, "acme")
    snap = snapshot_of(dataset)
    fx = FxTable(snap.fx_rates, "EUR")
    in_eur, _ = DetectContext.for_report(dataset.as_of, fx, "EUR")
    in_usd, note = DetectContext.for_report(dataset.as_of, fx, "USD")
    eur = {(f.detector, f.key): f for r in run_detectors(snap, list(ErpCategory), in_eur) for f in r.findings}
    usd = {(f.detector, f.key): f for r in run_detectors(snap, list(ErpCategory), in_usd) for f in r.findings}
    assert note is None and eur.keys() == usd.keys()
    rate = fx.latest("USD")
    assert rate is not None
    for key, finding in eur.items():
        assert finding.documents and finding.summary and finding.currency == "EUR"
        assert usd[key].currency == "USD" and usd[key].severity == finding.severity
        assert usd[key].amount == pytest.approx(finding.amount / rate, rel=1e-3, abs=0.02)
    assert {f.severity for f in eur.values()} >= {Severity.medium, Severity.high}


def test_a_currency_the_erp_has_no_rate_for_falls_back_to_the_base_currency_with_a_note() -> None:
    ctx, note = DetectContext.for_report(generate(1_000, 1).as_of, FxTable([], "EUR"), "BRL")
    assert ctx.currency == "EUR" and ctx.factor == 1.0
    assert note is not None and "BRL" in note


def test_a_quick_analysis_reads_only_the_tables_of_its_categories() -> None:
    assert tables_for([ErpCategory.inventory]) == ["fx_rates", "inventory"]
    assert set(tables_for(list(ErpCategory))) == set(TABLES)
    assert all(set(d.tables) <= set(TABLES) for d in DETECTORS.values())
