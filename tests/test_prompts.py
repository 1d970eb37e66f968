"""System prompts are tenant data: they render in a sandbox, and a faulty one fails only its own job."""

from __future__ import annotations

from typing import Any

import pytest

from core.errors import TemplateError
from schemas.agents import AgentSettings
from tasks.prompts import render
from tenancy.mongo import master_db
from tests.test_end_to_end import poll

CHAT = {"message": "Hello?", "conversation_id": "c1", "lead_id": "l1"}


def test_a_prompt_renders_the_agent_and_tenant_fields() -> None:
    text = render("You are {{ agent.name }} of {{ tenant.name }}.", {"agent": {"name": "Lena"},
                  "tenant": {"name": "Autohaus"}}, tenant_id="t-1", name="chat_draft")
    assert text == "You are Lena of Autohaus."


@pytest.mark.parametrize("source", [
    "{{ ''.__class__.__mro__[1].__subclasses__() }}",
    "{{ agent.name.__class__.__init__.__globals__ }}",
    "{{ cycler.__init__.__globals__.os.popen('id').read() }}",
    "{{ no_such_variable }}",
    "{% for %}",
])
def test_a_template_reaching_outside_its_data_is_refused_with_a_template_error(source: str) -> None:
    with pytest.raises(TemplateError) as raised:
        render(source, {"agent": {"name": "Lena"}}, tenant_id="t-1", name="evil")
    assert raised.value.context["template"] == "evil"


def test_a_tenant_with_a_broken_prompt_gets_a_failed_job_and_others_are_served(
    api: Any, worker: Any, make_tenant: Any
) -> None:
    master_db().system_prompts.update_one({"_id": "broken-chat"},
                                          {"$set": {"template": "{{ agent.name.__class__.__mro__ }}"}}, upsert=True)
    broken, broken_key = make_tenant(agent=AgentSettings(prompts={"chat_draft": "broken-chat"}))
    fine, fine_key = make_tenant()
    jobs = {}
    for tenant_id, key in ((broken, broken_key), (fine, fine_key)):
        answer = api.post("/v1/jobs", json={"kind": "chat_draft", "payload": CHAT},
                          headers={"Authorization": f"Bearer {key}"})
        jobs[tenant_id] = (key, answer.json()["job_id"])
    failed = poll(api, *jobs[broken])
    assert failed["status"] == "failed"
    assert failed["error"]["code"] == "template_error"
    assert "chat_draft" in failed["error"]["message"] and "master database" in failed["error"]["message"]
    assert poll(api, *jobs[fine])["status"] == "succeeded"
