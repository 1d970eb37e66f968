"""An execution request as a job: it goes through the one submit path (ingress/submit.py), and a synchronous
one waits for the job's outcome on the live-update stream (ingress/live.py), up to its instance's timeout.

The kind comes from the request or, when it names none, from its instance; `input_data` is validated as the
kind's payload, with the same field errors as `/v1/jobs` (their location says `input_data`).
"""

from __future__ import annotations

import asyncio
import contextlib
from typing import Any

import redis
from pydantic import TypeAdapter, ValidationError

from core.errors import InvalidJob, InvalidRequest
from ingress.live import updates
from ingress.submit import submit
from schemas.jobs import EnqueueResponse, JobRequest
from schemas.orchestration import DEFAULT_TIMEOUT_S, ExecutionCreate
from tenancy import instances, jobs
from tenancy.events import TERMINAL
from tenancy.registry import agent_config

_job_request: TypeAdapter[JobRequest] = TypeAdapter(JobRequest)
POLL_S = 0.5
"""How often a synchronous request reads the job when Redis (the live stream) is unreachable."""


def start(project_id: str, body: ExecutionCreate) -> tuple[EnqueueResponse, float]:
    """Submit the execution; returns the queued job and how long a synchronous caller may wait for it."""
    kind = body.kind or (instances.agent_of(project_id, body.instance_id).kind if body.instance_id else None)
    if kind is None:
        raise InvalidRequest("Name the kind (email_reply, chat_draft, erp_analysis) or an instance_id whose kind "
                             "says it; nothing was enqueued.")
    fields: dict[str, Any] = {"kind": kind, "payload": body.input_data, "instance_id": body.instance_id,
                              "variables": body.variables, "idempotency_key": body.idempotency_key,
                              "priority": body.priority}
    try:
        request = _job_request.validate_python({k: v for k, v in fields.items() if v is not None})
    except ValidationError as exc:
        raise InvalidJob("The execution's input_data is invalid for its kind; nothing was enqueued.",
                         fields=_field_errors(exc)) from None
    accepted = submit(project_id, request)
    if body.async_execution:
        return accepted, 0.0
    instance_id = jobs.view(project_id, accepted.job_id).instance_id
    timeout = agent_config(project_id, instance_id).timeout_s if instance_id else None
    return accepted, timeout or DEFAULT_TIMEOUT_S


async def wait_finished(project_id: str, execution_id: str, timeout_s: float) -> bool:
    """True once the execution has ended, False when `timeout_s` passed first."""
    try:
        async with asyncio.timeout(timeout_s):
            try:
                async with contextlib.aclosing(updates(project_id, execution_id)) as stream:
                    async for event in stream:
                        if event["status"] in TERMINAL:
                            return True
            except redis.RedisError:  # no live stream: read the record until it ends
                while True:
                    view = await asyncio.to_thread(jobs.view, project_id, execution_id)
                    if view.status.finished:
                        return True
                    await asyncio.sleep(POLL_S)
    except TimeoutError:
        return False
    return False


def _field_errors(exc: ValidationError) -> list[dict[str, Any]]:
    """Where and why, never the input (it may be large, or lead data); `payload` is named `input_data`."""
    found = []
    for error in exc.errors(include_url=False, include_context=False, include_input=False):
        loc = ["input_data" if part == "payload" else part for part in error["loc"]]
        found.append({"loc": loc, "msg": error["msg"], "type": error["type"]})
    return found
