"""Logs never carry a lead's e-mail address or a key, whatever path a job takes through the worker."""

from __future__ import annotations

import io
import logging
import uuid
from typing import Any

import structlog

from core.logs import mask_email
from schemas.agents import AgentSettings, ModelConfig
from tests.conftest import wait_for


def bearer(key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}


def masked(address: str) -> str:
    import re

    match = re.fullmatch(r".+", address)
    assert match is not None
    return mask_email(match)


def test_worker_logs_never_contain_the_lead_email_address_or_any_key(
    api: Any, worker: Any, make_tenant: Any, loopback: Any
) -> None:
    from schemas.jobs import JobEnvelope, JobKind, PriorityClass
    from tenancy import jobs
    from tenancy.registry import register_model
    from workers.app import app

    address = f"lead.{uuid.uuid4().hex[:8]}@example.com"
    email = {"from": address, "to": "sales@dealer.example", "subject": f"Offer for {address}",
             "body": f"Please answer me at {address}.", "message_id": f"<{uuid.uuid4().hex}@example.com>",
             "lead_id": "lead-log"}
    broken_model = f"broken-{uuid.uuid4().hex[:8]}"
    loopback.control(model=broken_model, always_fail_status=500)
    register_model(ModelConfig(name="loop-a", model="openai/gpt-4o-mini", api_base=loopback.api_base,
                               api_key_env="LOOPBACK_API_KEY"))
    register_model(ModelConfig(name=broken_model, model=f"openai/{broken_model}", api_base=loopback.api_base,
                               api_key_env="LOOPBACK_API_KEY"))
    tenant_id, key = make_tenant("logs", agent=AgentSettings(model="loop-a"))
    _, broken_key = make_tenant("logs", agent=AgentSettings(model=broken_model))

    served = api.post("/v1/jobs", json={"kind": "email_reply", "payload": email}, headers=bearer(key)).json()
    failing = api.post("/v1/jobs", json={"kind": "email_reply", "payload": email},
                       headers=bearer(broken_key)).json()
    garbled = JobEnvelope(job_id=uuid.uuid4().hex, tenant_id=tenant_id, kind=JobKind.email_reply,
                          priority=PriorityClass.standard, payload=email, enqueued_at=jobs.now())
    jobs.create(garbled, None)
    app.send_task("tenantq.run_job", queue="tenantq.standard", args=[
        {"job_id": garbled.job_id, "tenant_id": tenant_id, "payload": email, "api_key": key}, 1])

    def status(job_id: str, api_key: str) -> str:
        state: str = api.get(f"/v1/jobs/{job_id}", headers=bearer(api_key)).json()["status"]
        return state

    wait_for(lambda: status(served["job_id"], key) == "succeeded", 30)
    wait_for(lambda: status(failing["job_id"], broken_key) == "failed", 30)
    wait_for(lambda: status(garbled.job_id, key) == "failed", 30)

    log = wait_for(lambda: (text := worker.log.read_text(errors="replace")) and garbled.job_id in text and text)
    assert served["job_id"] in log and failing["job_id"] in log, "the jobs' lines are in this log"
    assert masked(address) in log, "the address was logged, masked"
    assert address not in log
    assert key not in log and broken_key not in log
    assert "sk-loopback-test" not in log


def test_an_exception_naming_a_lead_and_a_key_is_logged_with_both_masked() -> None:
    from core.logs import configure

    address, key = "erika.musterfrau@example.de", "tq_" + uuid.uuid4().hex + uuid.uuid4().hex
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    root = logging.getLogger()
    root.addHandler(handler)
    try:
        configure("INFO")
        structlog.configure(logger_factory=structlog.PrintLoggerFactory(stream))
        try:
            raise ValueError(f"lead {address} sent with key {key}")
        except ValueError:
            structlog.get_logger().exception("job.crashed", total_tokens=12, api_key=key)
            logging.getLogger("celery.app.trace").exception("Task failed for %s", address)
    finally:
        root.removeHandler(handler)
        structlog.reset_defaults()
    text = stream.getvalue()
    assert "ValueError: lead <email:" in text, text
    assert "Task failed for <email:" in text
    assert address not in text
    assert key not in text
    assert "total_tokens=12" in text, "token counts are not secrets"
