"""Model calls through the real LiteLLM HTTP path against the loopback server: retries, fallbacks, timeouts,
refusals, usage and cost; and the offline stand-in, which writes without any network."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import structlog

from core.errors import ProviderRejected, ProviderTimeout, ProviderUnavailable
from core.settings import get_settings
from providers import ChatResult, ModelRequest, complete, job_metadata
from providers.loopback import LoopbackServer
from schemas.agents import ModelConfig

pytestmark = pytest.mark.timeout(60)

ROOT = Path(__file__).resolve().parent.parent
KEY_ENV = "TQ_PROVIDERS_TEST_KEY"
SECRET = "sk-providers-test-secret-1234567890"
OFFLINE = ModelConfig(name="offline", model="offline/tenantq-draft")


@pytest.fixture(scope="module")
def server() -> Iterator[LoopbackServer]:
    with LoopbackServer() as running:
        yield running


@pytest.fixture(autouse=True)
def quick_retries(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """Backoffs of milliseconds, so retry tests take no time; the key lives only in the environment."""
    monkeypatch.setenv("LITELLM_BACKOFF_INITIAL_S", "0.01")
    monkeypatch.setenv("LITELLM_BACKOFF_MAX_S", "0.05")
    monkeypatch.setenv("LITELLM_MAX_ATTEMPTS", "4")
    monkeypatch.setenv("LITELLM_REQUEST_TIMEOUT_S", "10")
    monkeypatch.setenv(KEY_ENV, SECRET)
    get_settings.cache_clear()
    yield
    get_settings.cache_clear()


@pytest.fixture
def model() -> str:
    """A model name of this test alone, so its loopback behaviour and recorded requests are its own."""
    return f"m-{uuid.uuid4().hex[:10]}"


def route(server: LoopbackServer, name: str, **fields: Any) -> ModelConfig:
    return ModelConfig(name=name, model=f"openai/{name}", api_base=server.api_base, api_key_env=KEY_ENV,
                       **fields)


def ask(*routes: ModelConfig, content: str = "When can you deliver 40 chairs?", **fields: Any) -> ChatResult:
    request = ModelRequest(messages=[{"role": "system", "content": "You draft replies."},
                                     {"role": "user", "content": content}],
                           routes=list(routes), max_tokens=64, temperature=0.2, **fields)
    return complete(request)


AGENT = {"name": "Mira", "personality": "helpful", "tonality": "warm and friendly",
         "response_style": "concise", "dos": [], "donts": [], "language": "English"}
EMAIL = {"from": "jonas.weber@example.com", "to": "sales@acme.test", "subject": "Delivery of 40 chairs",
         "body": "Hello! We need 40 chairs for our new office. Can you deliver them by March?",
         "message_id": "<m1@example.com>", "lead_id": "lead-1"}
FINDINGS = [
    {"category": "procurement", "detector": "po_over_limit", "severity": "medium", "amount": 1200.0,
     "currency": "EUR", "summary": "PO 4711 exceeds the buyer's approval limit"},
    {"category": "invoice_matching", "detector": "price_mismatch", "severity": "critical", "amount": 9800.0,
     "currency": "EUR", "summary": "Invoice 88 bills 9,800 EUR more than PO 4702"},
    {"category": "invoice_matching", "detector": "qty_mismatch", "severity": "high", "amount": 450.0,
     "currency": "EUR", "summary": "Invoice 91 bills 10 units not received"},
]


def offline(kind: str, payload: dict[str, Any], findings: list[dict[str, Any]] | None = None,
            json_schema: dict[str, Any] | None = None) -> ChatResult:
    request = ModelRequest(messages=[{"role": "user", "content": json.dumps(payload)}], routes=[OFFLINE],
                           max_tokens=400, temperature=0.3, json_schema=json_schema,
                           metadata=job_metadata(kind, AGENT, payload, findings))
    return complete(request)


def test_a_call_returns_the_text_with_its_token_usage_and_cost(server: LoopbackServer) -> None:
    server.control("gpt-4o-mini", fail_first=[], always_fail_status=None, delay_s=0, reply="Monday works.",
                   prompt_tokens=1000, completion_tokens=200)
    result = ask(route(server, "gpt-4o-mini"))

    assert result.text == "Monday works."
    assert result.model == "openai/gpt-4o-mini" and not result.fallback_used
    usage = result.usage
    assert (usage.prompt_tokens, usage.completion_tokens, usage.total_tokens) == (1000, 200, 1200)
    assert usage.provider == "openai" and usage.attempts == 1 and not usage.offline
    assert usage.cost_usd == pytest.approx(1000 * 0.15e-6 + 200 * 0.6e-6)  # gpt-4o-mini's list price
    sent = server.requests("gpt-4o-mini")[-1]
    assert sent["max_tokens"] == 64 and sent["messages"][-1]["content"] == "When can you deliver 40 chairs?"


def test_a_route_with_its_own_prices_is_charged_at_those_prices(server: LoopbackServer, model: str) -> None:
    server.control(model, prompt_tokens=100, completion_tokens=10)
    result = ask(route(server, model, input_cost_per_token=0.001, output_cost_per_token=0.01))

    assert result.usage.cost_usd == pytest.approx(100 * 0.001 + 10 * 0.01)


def test_a_model_without_a_known_price_costs_nothing_rather_than_failing(
    server: LoopbackServer, model: str
) -> None:
    assert ask(route(server, model)).usage.cost_usd == 0.0


def test_rate_limited_calls_are_retried_until_they_succeed(server: LoopbackServer, model: str) -> None:
    server.control(model, fail_first=[429, 429])
    result = ask(route(server, model))

    assert result.text.startswith("echo: ")
    assert result.usage.attempts == 3
    assert len(server.requests(model)) == 3


def test_a_server_error_is_retried_and_the_retry_answers(server: LoopbackServer, model: str) -> None:
    server.control(model, fail_first=[500])
    result = ask(route(server, model))

    assert result.usage.attempts == 2 and result.model == f"openai/{model}"


def test_a_primary_that_keeps_failing_hands_over_to_the_fallback(server: LoopbackServer, model: str) -> None:
    primary, fallback = f"{model}-primary", f"{model}-fallback"
    server.control(primary, always_fail_status=500)
    result = ask(route(server, primary), route(server, fallback))

    assert result.fallback_used and result.model == f"openai/{fallback}"
    assert result.usage.attempts == 4 + 1  # every attempt on the primary, then one on the fallback
    assert len(server.requests(primary)) == 4


def test_every_route_failing_raises_the_last_error_with_all_attempts_counted(
    server: LoopbackServer, model: str
) -> None:
    server.control(f"{model}-a", always_fail_status=503)
    server.control(f"{model}-b", always_fail_status=502)
    with pytest.raises(ProviderUnavailable) as raised:
        ask(route(server, f"{model}-a"), route(server, f"{model}-b"))

    assert raised.value.context["attempts"] == 8
    assert raised.value.context["model"] == f"openai/{model}-b"
    assert "fallback" in raised.value.message


def test_a_hung_provider_times_out_and_the_fallback_answers(
    server: LoopbackServer, model: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("LITELLM_MAX_ATTEMPTS", "2")
    get_settings.cache_clear()
    server.control(f"{model}-hung", hang=True)
    started = time.monotonic()
    result = ask(route(server, f"{model}-hung", timeout_s=0.3), route(server, f"{model}-ok"))

    assert result.fallback_used and result.model == f"openai/{model}-ok"
    assert result.usage.attempts == 3
    assert time.monotonic() - started < 5


def test_a_hung_provider_without_a_fallback_raises_a_timeout_that_names_the_setting(
    server: LoopbackServer, model: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("LITELLM_MAX_ATTEMPTS", "2")
    get_settings.cache_clear()
    server.control(model, hang=True)
    with pytest.raises(ProviderTimeout) as raised:
        ask(route(server, model), timeout_s=0.3)

    assert raised.value.context["attempts"] == 2
    assert "timeout" in raised.value.message


def test_a_rejected_key_fails_at_once_without_retries(server: LoopbackServer, model: str) -> None:
    server.control(model, always_fail_status=401)
    with structlog.testing.capture_logs() as logs, pytest.raises(ProviderRejected) as raised:
        ask(route(server, model), content="my secret order details")

    assert len(server.requests(model)) == 1 and raised.value.context["attempts"] == 1
    assert f"${KEY_ENV}" in raised.value.message
    told = json.dumps([raised.value.to_dict(), logs], default=str)
    assert SECRET not in told and "secret order details" not in told


def test_a_route_whose_key_variable_is_unset_says_which_variable(
    server: LoopbackServer, model: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv(KEY_ENV)
    with pytest.raises(ProviderRejected, match=KEY_ENV):
        ask(route(server, model))
    assert server.requests(model) == []


def test_a_route_without_any_key_is_refused_at_once_rather_than_retried(
    server: LoopbackServer, model: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    keyless = ModelConfig(name=model, model=f"openai/{model}", api_base=server.api_base)
    with pytest.raises(ProviderRejected, match="OPENAI_API_KEY") as raised:
        ask(keyless)
    assert raised.value.context["attempts"] == 1


def test_a_model_name_litellm_cannot_place_is_rejected_by_name_and_the_fallback_answers(
    server: LoopbackServer, model: str
) -> None:
    unplaceable = ModelConfig(name="typo", model=f"gpt-{model}", api_base=server.api_base, api_key_env=KEY_ENV)
    with pytest.raises(ProviderRejected, match=f"gpt-{model}") as raised:
        ask(unplaceable)
    assert raised.value.context["attempts"] == 1 and "provider/model" in raised.value.message

    result = ask(unplaceable, route(server, model))
    assert result.fallback_used and result.model == f"openai/{model}"


def test_structured_output_is_asked_for_with_the_schema_where_the_model_supports_it(
    server: LoopbackServer,
) -> None:
    server.control("gpt-4o", fail_first=[], always_fail_status=None, reply=None)
    schema = {"type": "object", "properties": {"reply": {"type": "string"}}, "required": ["reply"]}
    result = ask(route(server, "gpt-4o"), json_schema=schema)

    sent = server.requests("gpt-4o")[-1]["response_format"]
    assert sent["type"] == "json_schema" and sent["json_schema"]["schema"] == schema
    assert isinstance(json.loads(result.text)["reply"], str)


def test_structured_output_falls_back_to_json_mode_on_models_without_schemas(
    server: LoopbackServer, model: str
) -> None:
    ask(route(server, model), json_schema={"type": "object"})

    assert server.requests(model)[-1]["response_format"] == {"type": "json_object"}


def test_the_offline_stand_in_writes_the_same_email_for_the_same_job() -> None:
    first, second = offline("email_reply", EMAIL), offline("email_reply", EMAIL)

    assert first.text == second.text
    assert first.text.startswith("Hi Jonas,")
    assert "Delivery of 40 chairs" in first.text and "Can you deliver them by March?" in first.text
    assert first.text.rstrip().endswith("Mira")
    assert first.usage.offline and first.usage.cost_usd == 0.0 and first.usage.provider == "offline"
    assert first.usage.prompt_tokens > 0 and first.usage.completion_tokens > 0
    assert first.metadata["offline"] is True and "not a language model" in first.metadata["note"]


def test_offline_chat_drafts_are_json_with_quick_replies() -> None:
    payload = {"message": "What does the premium plan cost?", "conversation_id": "c1", "lead_id": "l1"}
    schema = {"type": "object", "properties": {"reply": {"type": "string"},
              "quick_replies": {"type": "array", "items": {"type": "string"}}}, "required": ["reply"]}
    draft = json.loads(offline("chat_draft", payload, json_schema=schema).text)

    assert "premium plan" in draft["reply"]
    assert "See pricing" in draft["quick_replies"] and len(draft["quick_replies"]) == 3


def test_offline_erp_analysis_reports_the_findings_worst_severity_first() -> None:
    payload = {"prompt": "Why are we overpaying suppliers?",
               "categories": ["procurement", "invoice_matching"]}
    first = offline("erp_analysis", payload, FINDINGS)
    report = json.loads(first.text)

    assert first.text == offline("erp_analysis", payload, FINDINGS).text
    assert set(report) == {"summary", "root_causes", "recommended_actions"}
    assert "3 exception(s)" in report["summary"] and "11,450.00 EUR" in report["summary"]
    assert "critical" in report["summary"]
    assert report["root_causes"][0].startswith("invoice_matching: 2 finding(s), 10,250.00 EUR")
    assert report["root_causes"][1].startswith("procurement: 1 finding(s)")
    assert "three-way match" in report["recommended_actions"][0]


def test_offline_answers_fit_the_schema_the_task_asked_for() -> None:
    schema = {"type": "object", "additionalProperties": False, "required": ["subject", "body", "urgent"],
              "properties": {"subject": {"type": "string"}, "body": {"type": "string"},
                             "urgent": {"type": "boolean"}}}
    answer = json.loads(offline("email_reply", EMAIL, json_schema=schema).text)

    assert answer["subject"] == "Re: Delivery of 40 chairs" and answer["body"].startswith("Hi Jonas,")
    assert answer["urgent"] is False and set(answer) == {"subject", "body", "urgent"}


def test_the_estimate_reserves_the_prompt_and_the_whole_completion_at_the_primary_price() -> None:
    from providers.pricing import estimate

    messages = [{"role": "user", "content": "Please summarise our open invoices."}]
    priced = ModelConfig(name="p", model="openai/gpt-4o-mini", input_cost_per_token=1e-6,
                         output_cost_per_token=2e-6)
    tokens, usd = estimate(ModelRequest(messages=messages, routes=[priced, OFFLINE], max_tokens=500,
                                        temperature=0))
    free_tokens, free_usd = estimate(ModelRequest(messages=messages, routes=[OFFLINE], max_tokens=500,
                                                  temperature=0))

    prompt_tokens = tokens - 500
    assert 5 < prompt_tokens < 30
    assert usd == pytest.approx(prompt_tokens * 1e-6 + 500 * 2e-6)
    assert free_usd == 0.0 and free_tokens > 500


def test_without_a_provider_key_the_default_model_is_the_offline_stand_in(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from providers.pricing import default_model

    monkeypatch.delenv("LITELLM_DEFAULT_MODEL", raising=False)
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    get_settings.cache_clear()
    assert default_model(get_settings()) == "offline/tenantq-draft"
    monkeypatch.setenv("OPENAI_API_KEY", "sk-unused")
    assert default_model(get_settings()) == "openai/gpt-4o-mini"
    monkeypatch.setenv("LITELLM_DEFAULT_MODEL", "anthropic/claude-3-5-haiku-latest")
    get_settings.cache_clear()
    assert default_model(get_settings()) == "anthropic/claude-3-5-haiku-latest"


def test_importing_the_providers_package_does_not_import_litellm() -> None:
    code = ("import providers, providers.llm, providers.offline, providers.pricing, providers.bench, "
            "providers.loopback; import sys; assert 'litellm' not in sys.modules, 'litellm imported'")
    subprocess.run([sys.executable, "-c", code], cwd=ROOT, check=True, timeout=30,
                   env={**os.environ, "PYTHONWARNINGS": "error"})


def test_the_loopback_server_holds_three_hundred_slow_requests_at_once(model: str) -> None:
    import aiohttp

    async def burst(url: str) -> list[int]:
        async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=0)) as session:
            async def one(i: int) -> int:
                body = {"model": model, "messages": [{"role": "user", "content": str(i)}]}
                async with session.post(f"{url}/chat/completions", json=body) as answer:
                    return answer.status
            return await asyncio.gather(*(one(i) for i in range(300)))

    with LoopbackServer() as own:  # its own server, so the burst does not slow other tests' calls
        own.control(model, delay_s=1.0)
        started = time.monotonic()
        statuses = asyncio.run(burst(own.api_base))
        elapsed = time.monotonic() - started

    assert statuses == [200] * 300
    assert elapsed < 6  # one second of delay each: served side by side, not one after another


def test_bare_litellm_rate_reports_calls_per_second(server: LoopbackServer) -> None:
    from core import aio
    from providers.bench import bare_litellm_rate

    server.control("bench", delay_s=0.05)
    rate = aio.run(bare_litellm_rate(server.url, concurrency=5, total=20), timeout=30)

    assert 0 < rate < 5 / 0.05 * 1.5
