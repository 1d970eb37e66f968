"""The `tenantq` command against the session's fleet, run as a user runs it: a separate process."""

from __future__ import annotations

import json
import subprocess
import sys
import uuid
from typing import Any

from tests.conftest import tenantq

EMAIL = json.dumps({"from": "lead@example.com", "to": "sales@dealer.example", "subject": "Price",
                    "body": "What does the Golf cost?", "message_id": "<cli-1@example.com>", "lead_id": "l-9"})


def test_help_answers_without_importing_litellm() -> None:
    code = ("import sys\nfrom tenantq.cli import main\n"
            "try:\n    main(['--help'])\nexcept SystemExit:\n    pass\n"
            "assert 'litellm' not in sys.modules, 'litellm was imported'")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    assert "tenants" in done.stdout and "bench" in done.stdout


def test_tenants_create_prints_the_new_key_alone_on_its_last_line(services: dict[str, str]) -> None:
    tenant_id = f"cli-{uuid.uuid4().hex[:8]}"
    done = tenantq(services, "tenants", "create", tenant_id, "--template", "car-dealer", "--weight", "2")
    assert done.returncode == 0, done.stderr
    last = done.stdout.strip().splitlines()[-1]
    assert last.startswith("tq_") and " " not in last
    listed = tenantq(services, "tenants", "list")
    assert tenant_id in listed.stdout and '"weight":2' in listed.stdout


def test_a_bad_tenant_id_or_plan_is_refused_with_a_readable_error(services: dict[str, str]) -> None:
    bad_id = tenantq(services, "tenants", "create", "Bad_ID")
    assert bad_id.returncode == 2 and "tenant_id" in bad_id.stderr and "Traceback" not in bad_id.stderr
    bad_plan = tenantq(services, "tenants", "create", f"cli-{uuid.uuid4().hex[:8]}", "--weight", "500")
    assert bad_plan.returncode == 2 and "weight" in bad_plan.stderr


def test_enqueue_then_result_shows_the_finished_job(services: dict[str, str], worker: Any) -> None:
    tenant_id = f"cli-{uuid.uuid4().hex[:8]}"
    assert tenantq(services, "tenants", "create", tenant_id).returncode == 0
    queued = tenantq(services, "enqueue", "--tenant", tenant_id, "email_reply", EMAIL)
    assert queued.returncode == 0, queued.stderr
    job_id = queued.stdout.strip()
    shown = tenantq(services, "result", "--tenant", tenant_id, job_id, "--wait", "30")
    assert shown.returncode == 0, shown.stderr
    job = json.loads(shown.stdout)
    assert job["status"] == "succeeded" and job["tenant_id"] == tenant_id
    assert "lead@example.com" not in shown.stderr


def test_an_invalid_payload_is_refused_and_nothing_is_enqueued(services: dict[str, str]) -> None:
    tenant_id = f"cli-{uuid.uuid4().hex[:8]}"
    assert tenantq(services, "tenants", "create", tenant_id).returncode == 0
    refused = tenantq(services, "enqueue", "--tenant", tenant_id, "email_reply", '{"body": "no sender"}')
    assert refused.returncode == 2 and "nothing was enqueued" in refused.stderr
    report = json.loads(tenantq(services, "queues", "--json").stdout)
    row = next(t for t in report["tenants"] if t["tenant_id"] == tenant_id)
    assert sum(row["backlog"].values()) == 0
