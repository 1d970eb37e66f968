"""What a job may spend, reserved against its tenant's budget at admission and reconciled when it ends.

The estimate is the rendered prompt's tokens plus the completion allowance, at the primary model's price,
so the real spend of a job stays at or below what was reserved for it.
"""

from __future__ import annotations

import json
from typing import Any

from providers.base import ModelRequest
from providers.pricing import estimate as price
from schemas.jobs import JobEnvelope, JobKind
from tasks.context import JobContext
from tasks.kinds import kind_of
from tenancy.jobs import now
from tenancy.registry import agent_config
from tenantq.logs import get_logger

ERP_ALLOWANCE = 4  # an ERP report's prompt carries its findings: allow several completions' worth


def estimate(tenant_id: str, kind: JobKind, payload: dict[str, Any], instance_id: str | None = None,
             variables: dict[str, Any] | None = None) -> tuple[int, float]:
    agent = agent_config(tenant_id, instance_id)
    envelope = JobEnvelope(job_id="estimate", tenant_id=tenant_id, kind=kind, priority="standard",
                           payload=payload, enqueued_at=now(), instance_id=instance_id, variables=variables or {})
    ctx = JobContext(envelope, agent, get_logger(tenant_id=tenant_id))
    spec = kind_of(kind)
    parsed = spec.payload.model_validate(payload)
    if spec.messages is not None:
        messages = spec.messages(ctx, parsed)
    else:
        messages = [{"role": "system", "content": ctx.render(kind.value)},
                    {"role": "user", "content": json.dumps(payload)}]
    allowance = agent.max_tokens * (ERP_ALLOWANCE if kind is JobKind.erp_analysis else 1)
    request = ModelRequest(messages=messages, routes=agent.models, max_tokens=allowance,
                           temperature=agent.temperature)
    return price(request)
