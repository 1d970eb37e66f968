"""What the operators and the autoscaler see of the queues."""

from __future__ import annotations

from typing import Any

from schemas.jobs import PriorityClass
from tenancy.queues import get_queues
from tenancy.registry import list_tenants


def queue_report() -> dict[str, Any]:
    """Each tenant's backlog, oldest job age, in flight and spend; the per-class backlog totals."""
    queues = get_queues()
    known = {t.tenant_id for t in list_tenants()} | set(queues.tenants())
    return {
        "backlog": {c.value: queues.backlog(c) for c in PriorityClass},
        "tenants": queues.tenant_states(sorted(known)),
        "dead_letters": queues.dead_letter_count(),
    }
