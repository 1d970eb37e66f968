"""Waiting, bounded, for a job to end: on its live updates (Redis pub/sub), not by polling the database."""

from __future__ import annotations

import asyncio
from contextlib import aclosing

from fastapi.concurrency import run_in_threadpool

from ingress.live import updates
from schemas.jobs import JobView
from tenancy import jobs
from tenancy.events import TERMINAL


async def until_ended(tenant_id: str, job_id: str, timeout_s: float) -> JobView:
    """The job once it has ended, or as it stands after `timeout_s`; JobNotFound for an unknown job."""
    try:
        async with asyncio.timeout(timeout_s), aclosing(updates(tenant_id, job_id)) as stream:
            async for event in stream:
                if event["status"] in TERMINAL:
                    break
    except TimeoutError:
        pass
    return await run_in_threadpool(jobs.view, tenant_id, job_id)
