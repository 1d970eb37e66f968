"""Submitting a job: the one path shared by the HTTP ingress and the Python client.

Checks the tenant (active, budget left), picks the agent instance the job runs (the one it names, else the
project's default for its kind; one it names is rendered with the run's variables first), estimates what the
job may spend (reserved at admission), records the job in the tenant's database and appends it to the
tenant's queue. A rejection enqueues nothing; a failure to queue marks the recorded job failed, so nothing is
silently lost.
"""

from __future__ import annotations

from pydantic import ValidationError

from core.errors import BudgetExceeded, EnqueueFailed, InvalidJob, TenantSuspended, UnknownTenant
from schemas.ids import new_job_id
from schemas.jobs import (
    DEFAULT_CLASS,
    MAX_ESTIMATE_TOKENS,
    MAX_ESTIMATE_USD,
    EnqueueResponse,
    JobEnvelope,
    JobKind,
    JobRequest,
    JobStatus,
)
from schemas.tenants import Plan, TenantStatus
from tasks.estimate import estimate
from tenancy import instances, jobs
from tenancy.queues import get_queues
from tenancy.registry import ensure_queue, get_tenant


def submit(tenant_id: str, request: JobRequest) -> EnqueueResponse:
    tenant = get_tenant(tenant_id)
    if tenant.status is not TenantStatus.active:
        raise TenantSuspended(f"Tenant {tenant_id!r} is suspended; nothing was enqueued.", tenant_id=tenant_id)
    queues = get_queues()
    plan = tenant.plan
    if plan.monthly_budget_usd is not None or plan.monthly_token_budget is not None:
        spend = queues.spend(tenant_id)
        if (plan.monthly_budget_usd is not None and spend.usd >= plan.monthly_budget_usd) or (
            plan.monthly_token_budget is not None and spend.tokens >= plan.monthly_token_budget
        ):
            raise BudgetExceeded(
                "This month's budget is spent; nothing was enqueued. Raise the plan's budget or wait for the "
                "next month.", tenant_id=tenant_id,
            )
    kind = JobKind(request.kind)
    payload = request.payload.model_dump(mode="json", by_alias=True)
    instance_id = instances.for_job(tenant, kind, request.instance_id, request.variables).instance_id
    tokens, usd = (estimate(tenant_id, kind, payload, instance_id, request.variables) if _needs_estimate(plan)
                   else (0, 0.0))
    try:
        envelope = JobEnvelope(
            job_id=new_job_id(), tenant_id=tenant_id, kind=kind, priority=request.priority or DEFAULT_CLASS[kind],
            payload=payload, enqueued_at=jobs.now(), estimate_tokens=tokens, estimate_usd=usd,
            instance_id=instance_id, variables=request.variables,
        )
    except ValidationError as exc:  # only the estimate comes from outside the validated request
        raise InvalidJob(
            f"The job would reserve {tokens} tokens and ${usd}, more than one job may ({MAX_ESTIMATE_TOKENS} "
            f"tokens, ${MAX_ESTIMATE_USD}); nothing was enqueued. Check the prices of the tenant's model.",
            tenant_id=tenant_id) from exc
    earlier = jobs.create(envelope, request.idempotency_key)
    if earlier is not None:
        return EnqueueResponse(job_id=earlier, status=jobs.view(tenant_id, earlier).status, duplicate=True)
    try:
        try:
            queues.enqueue(envelope)
        except UnknownTenant:
            ensure_queue(tenant_id)
            queues.enqueue(envelope)
    except (EnqueueFailed, UnknownTenant, TenantSuspended) as exc:
        jobs.fail(tenant_id, envelope.job_id, exc)
        raise
    return EnqueueResponse(job_id=envelope.job_id, status=JobStatus.queued)


def _needs_estimate(plan: Plan) -> bool:
    """Only a budget or a token rate reads the estimate; skipping it spares the prompt rendering."""
    return any(v is not None for v in (plan.monthly_budget_usd, plan.monthly_token_budget, plan.tokens_per_minute))
