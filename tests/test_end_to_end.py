"""The core fleet end to end: ingress -> tenant queue -> admission -> real Celery worker -> tenant database."""

from __future__ import annotations

from typing import Any

from tests.conftest import wait_for

EMAIL = {
    "from": "jane.doe@example.com", "to": "sales@dealer.example", "subject": "Test drive",
    "body": "Hello, can I test drive the new model on Saturday?", "message_id": "<m1@example.com>",
    "lead_id": "lead-1",
}


def poll(api: Any, key: str, job_id: str, timeout: float = 60) -> dict[str, Any]:
    def finished() -> dict[str, Any] | None:
        body: dict[str, Any] = api.get(f"/v1/jobs/{job_id}", headers={"Authorization": f"Bearer {key}"}).json()
        return body if body["status"] in ("succeeded", "failed") else None

    result: dict[str, Any] = wait_for(finished, timeout)
    return result


def test_an_email_reply_is_written_into_its_tenants_database(api: Any, worker: Any, make_tenant: Any) -> None:
    tenant_id, key = make_tenant(template_id="car-dealer")
    answer = api.post("/v1/jobs", json={"kind": "email_reply", "payload": EMAIL},
                      headers={"Authorization": f"Bearer {key}"})
    assert answer.status_code == 202, answer.text
    job = poll(api, key, answer.json()["job_id"])
    assert job["status"] == "succeeded", job
    assert job["tenant_id"] == tenant_id
    assert job["result"]["in_reply_to"] == "<m1@example.com>"
    assert job["result"]["offline"] is True
    assert job["usage"]["total_tokens"] > 0
    assert job["started_at"] and job["finished_at"]
