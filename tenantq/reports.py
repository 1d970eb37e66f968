"""Tables people read: the queue report and each tenant's token usage."""

from __future__ import annotations

import json
from typing import Any

import click


def print_queue_report(as_json: bool = False) -> None:
    from tenancy.visibility import queue_report

    report = queue_report()
    if as_json:
        click.echo(json.dumps(report, indent=2))
        return
    click.echo("backlog by class: " + ", ".join(f"{k} {v}" for k, v in report["backlog"].items())
               + f"; dead letters {report['dead_letters']}")
    click.echo(f"{'tenant':32} {'backlog':>8} {'oldest s':>9} {'in flight':>9} {'spend USD':>10} {'tokens':>9}")
    for t in report["tenants"]:
        age = "-" if t["oldest_age_s"] is None else f"{t['oldest_age_s']:.1f}"
        click.echo(f"{t['tenant_id']:32} {sum(t['backlog'].values()):>8} {age:>9} {t['in_flight']:>9} "
                   f"{t['spend_usd']:>10.4f} {t['spend_tokens']:>9}")


def usage_by_model(tenant_id: str) -> list[dict[str, Any]]:
    """Token usage of one tenant, from its own database, grouped by model."""
    from tenancy.mongo import tenant_db

    rows = tenant_db(tenant_id).token_usage.aggregate([
        {"$group": {"_id": "$model", "calls": {"$sum": 1}, "prompt": {"$sum": "$prompt_tokens"},
                    "completion": {"$sum": "$completion_tokens"}, "total": {"$sum": "$total_tokens"},
                    "cost": {"$sum": "$cost_usd"}}},
        {"$sort": {"_id": 1}},
    ])
    return list(rows)


def print_usage(tenant_id: str) -> None:
    click.echo(f"\ntoken usage of {tenant_id}")
    click.echo(f"  {'model':28} {'calls':>6} {'prompt':>8} {'completion':>10} {'total':>8} {'cost USD':>9}")
    for row in usage_by_model(tenant_id):
        click.echo(f"  {row['_id']!s:28} {row['calls']:>6} {row['prompt']:>8} {row['completion']:>10} "
                   f"{row['total']:>8} {row['cost']:>9.4f}")
