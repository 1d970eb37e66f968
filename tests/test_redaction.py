"""The one redaction of log lines, dead letters and stored errors: what it masks, and what it leaves readable."""

from __future__ import annotations

import io
import logging
import re
import subprocess
import sys
import uuid
from collections.abc import Iterator
from typing import Any

import httpx
import httpx2
import pytest
import structlog

from core.logs import configure
from core.redaction import learn_environment, mask_email, redact, redact_text

pytestmark = pytest.mark.timeout(30)


def masked(address: str) -> str:
    match = re.fullmatch(r".+", address)
    assert match is not None
    return mask_email(match)


@pytest.mark.parametrize("address", [
    "jörg.müller@bücher.de",
    "jo\u0308rg.mu\u0308ller@bu\u0308cher.de",  # the same letters, decomposed: a letter and its umlaut
    "admin@localhost",
    "lead+cars@xn--bcher-kva.example",
    "Erika.Mustermann@example.co.uk",
])
def test_an_address_of_any_script_or_domain_shape_becomes_a_stable_hash(address: str) -> None:
    line = redact_text(f"reply to {address}, please.")
    assert line == f"reply to {masked(address)}, please.", line
    assert redact_text(address.upper()) == masked(address), "the hash ignores case, so lines correlate"


def test_an_address_written_percent_encoded_in_a_url_is_masked_like_the_plain_one() -> None:
    line = redact_text("GET /v1/jobs?from=j%C3%B6rg.m%C3%BCller%40b%C3%BCcher.de HTTP/1.1")
    assert line == f"GET /v1/jobs?from={masked('jörg.müller@bücher.de')} HTTP/1.1"


@pytest.mark.parametrize("text, shown", [
    ("mongodb://app:pa55word@db.internal:27017/?authSource=admin",
     "mongodb://app:***@db.internal:27017/?authSource=admin"),
    ("redis://:s3cret@127.0.0.1:6379/0", "redis://:***@127.0.0.1:6379/0"),
    ("GET https://api.example.com/v1/x?token=abc123&page=2&api_key=zz9 HTTP/1.1",
     "GET https://api.example.com/v1/x?token=***&page=2&api_key=*** HTTP/1.1"),
    ("https://bucket.s3.example/f?X-Amz-Signature=dead&X-Amz-Credential=AKIAX%2F2020&sig=Zm9v==",
     "https://bucket.s3.example/f?X-Amz-Signature=***&X-Amz-Credential=***&sig=***"),
    ("login failed: password=hunter22 access_token=eyJhb", "login failed: password=*** access_token=***"),
    ("{'api_key': 'plain-value', \"client_secret\": \"xyz\"}", "{'api_key': '***', \"client_secret\": \"***\"}"),
    ("Authorization: Bearer 9f8e7d6c5b4a", "Authorization: Bearer <redacted>"),
    ("keys sk-proj-abcdefgh1234 tq_abcdefghijklmnopqrstuvwxyz pplx-0123456789abcdef0123",
     "keys <redacted> <redacted> <redacted>"),
])
def test_credentials_in_urls_parameters_headers_and_key_shapes_are_masked(text: str, shown: str) -> None:
    assert redact_text(text) == shown
    assert redact_text(shown) == shown, "redacting twice changes nothing"


def test_a_secret_of_the_environment_is_masked_wherever_it_appears_whatever_its_shape() -> None:
    secret, password = f"plain{uuid.uuid4().hex}", f"pw{uuid.uuid4().hex}"
    learn_environment({"ACME_API_KEY": secret, "DATABASE_URL": f"postgres://app:{password}@db/x",
                       "TIKTOKEN_CACHE_DIR": "/var/cache/tiktoken", "USE_TOKEN": "1"})
    assert redact_text(f"provider said: key {secret} is invalid") == "provider said: key <redacted> is invalid"
    assert redact_text(f"auth failed with {password}") == "auth failed with <redacted>"
    assert redact_text("cache in /var/cache/tiktoken, 1 try") == "cache in /var/cache/tiktoken, 1 try"


def test_counts_ids_and_ordinary_parameters_stay_readable() -> None:
    line = ("job.succeeded total_tokens=12 max_tokens=512 routing_key=tenantq.batch idempotency_key=c1-m7 "
            "job_id=0123abcd kind=email_reply")
    assert redact_text(line) == line


def test_a_mapping_masks_the_values_of_secret_named_keys_and_redacts_the_rest() -> None:
    assert redact({"api_key": "anything", "Authorization": "x", "prompt_tokens": 3,
                   "payload": {"from": "lead@example.com", "tags": ["admin@localhost"]}}) == {
        "api_key": "<redacted>", "Authorization": "<redacted>", "prompt_tokens": 3,
        "payload": {"from": masked("lead@example.com"), "tags": [masked("admin@localhost")]},
    }


@pytest.fixture
def captured() -> Iterator[io.StringIO]:
    """Stdlib log lines of every logger, through a handler of the test's own, after configure()."""
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    root = logging.getLogger()
    root.addHandler(handler)
    configure("INFO")
    try:
        yield stream
    finally:
        root.removeHandler(handler)
        structlog.reset_defaults()


@pytest.mark.parametrize("library", [httpx, httpx2])
def test_a_url_with_a_token_logged_by_an_http_client_at_info_is_masked(
    library: Any, loopback: Any, captured: io.StringIO,
) -> None:
    token, address = f"t{uuid.uuid4().hex}", "jörg.müller@bücher.de"
    logger = logging.getLogger(library.__name__)
    logger.setLevel(logging.INFO)  # configure() keeps it at WARNING: one line per request
    try:
        with library.Client() as client:
            answer = client.get(f"{loopback.url}/_health", params={"token": token, "lead": address})
    finally:
        logger.setLevel(logging.WARNING)
    assert answer.status_code == 200
    assert "/_health?" in captured.getvalue(), "the request was logged"
    assert token not in captured.getvalue()
    assert "%40" not in captured.getvalue() and masked(address) in captured.getvalue()


def test_a_library_logger_with_a_handler_of_its_own_prints_redacted_lines_too() -> None:
    stream = io.StringIO()
    own = logging.getLogger(f"lib-{uuid.uuid4().hex[:6]}")
    own.propagate = False
    own.addHandler(logging.StreamHandler(stream))  # as LiteLLM and uvicorn do
    configure("INFO")
    own.warning("request for %s failed: %r", "admin@localhost", {"url": "https://x/?key=k123"})
    own.warning("plain message naming lead@example.com")
    try:
        raise ValueError("lead erika@example.de")
    except ValueError:
        own.exception("crashed")
    text = stream.getvalue()
    assert "admin@localhost" not in text and "lead@example.com" not in text and "erika@example.de" not in text
    assert "key=***" in text and "k123" not in text
    assert f"request for {masked('admin@localhost')} failed" in text
    assert "ValueError: lead <email:" in text


PRINTS_WITHOUT_A_LOGGER = '''
import sys, threading, warnings
from core.logs import configure, redact_streams

configure()
redact_streams()
print("reply to jörg.müller@bücher.de")
warnings.warn("lead admin@localhost")

def crash() -> None:
    raise ValueError("lead erika@example.de")

thread = threading.Thread(target=crash)
thread.start()
thread.join()
sys.stdout.write("split anna@")
sys.stdout.flush()
sys.stdout.write("example.de\\n")
sys.stdout.write("no newline at exit: otto@example.de")
'''


def test_what_a_process_prints_without_a_logger_is_redacted_once_its_streams_are() -> None:
    done = subprocess.run([sys.executable, "-c", PRINTS_WITHOUT_A_LOGGER], capture_output=True, text=True,
                          timeout=30)
    assert done.returncode == 0, done.stderr
    printed = done.stdout + done.stderr
    for address in ("jörg.müller@bücher.de", "admin@localhost", "erika@example.de", "anna@example.de",
                    "otto@example.de"):
        assert address not in printed and masked(address) in printed, printed
    assert "ValueError: lead <email:" in done.stderr and "UserWarning: lead <email:" in done.stderr
