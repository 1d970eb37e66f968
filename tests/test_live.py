"""Live job updates over a real WebSocket and a real Server-Sent Events stream, from a real ingress process
(uvicorn) fed by a real worker through Redis pub/sub."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
import websockets

from schemas.agents import AgentSettings, ModelConfig
from tenantq.localfleet import LocalFleet
from tests.conftest import wait_for
from tests.real_ingress import running_ingress

CHAT = {"message": "Is the estate still there?", "conversation_id": "live-1", "lead_id": "lead-live"}


@pytest.fixture(scope="module")
def ingress(fleet: LocalFleet) -> Iterator[str]:
    """A real ingress process on a free port, on the session's Redis and MongoDB."""
    with running_ingress(fleet.env) as url:
        yield url


def slow_tenant(make_tenant: Any, loopback: Any, delay_s: float = 0.5) -> tuple[str, str]:
    from tenancy.registry import register_model

    name = f"live-{time.monotonic_ns()}"
    loopback.control(model=name, delay_s=delay_s)
    register_model(ModelConfig(name=name, model=f"openai/{name}", api_base=loopback.api_base,
                               api_key_env="LOOPBACK_API_KEY"))
    tenant_id, key = make_tenant("live", agent=AgentSettings(model=name))
    return tenant_id, key


def submit(url: str, key: str) -> str:
    answer = httpx.post(f"{url}/v1/jobs", json={"kind": "chat_draft", "payload": CHAT},
                        headers={"Authorization": f"Bearer {key}"}, timeout=10)
    assert answer.status_code == 202, answer.text
    job_id: str = answer.json()["job_id"]
    return job_id


async def watch_socket(url: str, job_id: str, **auth: str) -> list[dict[str, Any]]:
    query = "&".join(f"{k}={v}" for k, v in auth.items())
    received: list[dict[str, Any]] = []
    async with websockets.connect(f"ws://{url.removeprefix('http://')}/ws/execution/{job_id}?{query}") as socket:
        async for message in socket:
            event = json.loads(message)
            event["received_at"] = time.time()
            received.append(event)
    return received


def test_a_websocket_watcher_gets_the_current_state_then_every_change_in_order_then_the_socket_closes(
    ingress: str, worker: Any, make_tenant: Any, loopback: Any,
) -> None:
    _, key = slow_tenant(make_tenant, loopback)
    job_id = submit(ingress, key)
    events = asyncio.run(asyncio.wait_for(watch_socket(ingress, job_id, token=key), 30))
    names = [e["event"] for e in events]
    assert names[0] == "state" and names[-1] == "succeeded", names
    assert names.index("model_call") < names.index("succeeded"), names
    if events[0]["status"] == "queued":  # connected before a worker took the job: it sees it running
        assert "running" in [e["status"] for e in events], names
    rank = {"queued": 0, "running": 1, "succeeded": 2}
    assert [rank[e["status"]] for e in events] == sorted(rank[e["status"]] for e in events), "in order"
    final = events[-1]
    assert final["data"]["result"]["reply"] and final["data"]["total_tokens"] > 0
    model_call = next(e for e in events if e["event"] == "model_call")
    assert model_call["data"]["latency_ms"] >= 500 * 0.9, "the call's duration travels with it"
    # Pushed, not polled: each change arrives within 100 ms of the moment it was published.
    delays = [e["received_at"] - e["at"] for e in events if e["at"] is not None]
    assert max(delays) < 0.1, delays


def test_a_watcher_that_connects_after_the_end_gets_the_final_state_at_once(
    ingress: str, worker: Any, make_tenant: Any, loopback: Any,
) -> None:
    tenant_id, key = slow_tenant(make_tenant, loopback, delay_s=0)
    job_id = submit(ingress, key)
    from tenancy import jobs

    wait_for(lambda: jobs.view(tenant_id, job_id).status.finished, timeout=30)
    events = asyncio.run(asyncio.wait_for(watch_socket(ingress, job_id, token=key), 10))
    assert [e["event"] for e in events] == ["state"] and events[0]["status"] == "succeeded"
    assert events[0]["data"]["result"]["reply"]


def test_server_sent_events_stream_the_same_changes_and_end_with_the_outcome(
    ingress: str, worker: Any, make_tenant: Any, loopback: Any,
) -> None:
    _, key = slow_tenant(make_tenant, loopback)
    job_id = submit(ingress, key)
    names: list[str] = []
    with httpx.stream("GET", f"{ingress}/v1/jobs/{job_id}/events", headers={"Authorization": f"Bearer {key}"},
                      timeout=30) as response:
        assert response.status_code == 200
        assert response.headers["content-type"].startswith("text/event-stream")
        for line in response.iter_lines():
            if line.startswith("data: "):
                names.append(json.loads(line[6:])["event"])
    assert names[0] == "state" and names[-1] == "succeeded" and "model_call" in names, names


def test_another_projects_key_or_no_key_sees_nothing_of_a_job(
    ingress: str, worker: Any, make_tenant: Any, loopback: Any,
) -> None:
    _, key = slow_tenant(make_tenant, loopback, delay_s=0)
    other_id, other_key = make_tenant("other")
    job_id = submit(ingress, key)
    for headers in ({"Authorization": f"Bearer {other_key}"}, {}):
        answer = httpx.get(f"{ingress}/v1/jobs/{job_id}/events", headers=headers, timeout=10)
        assert answer.status_code in (401, 404) and "status" not in answer.json().get("error", {})
    with pytest.raises(websockets.exceptions.InvalidStatus):
        asyncio.run(watch_socket(ingress, job_id, token=other_key))
    # The admin token may watch any project's job, naming the project.
    events = asyncio.run(asyncio.wait_for(
        watch_socket(ingress, job_id, token="test-admin-token", project_id=_tenant_of(key)), 30))
    assert events[-1]["status"] in ("succeeded", "failed")
    assert other_id not in json.dumps(events)


def _tenant_of(key: str) -> str:
    from tenancy.apikeys import authenticate

    return authenticate(key)
