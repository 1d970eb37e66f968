"""The producer client: submit jobs and poll their results, over HTTP or straight to the broker.

    client = Client(url="http://127.0.0.1:8000", api_key="tq_...")   # through the ingress
    client = Client(tenant_id="acme-motors")                          # in-cluster: REDIS_URL, MONGODB_URL
    job_id = client.enqueue("email_reply", {...}, idempotency_key=message_id)
    view = client.wait(job_id, timeout=60)

Both modes run the same validation and the same submit path, and raise the same TenantqError subclasses.
"""

from __future__ import annotations

import time
from typing import Any

import httpx
from pydantic import TypeAdapter, ValidationError

from core import errors
from schemas.jobs import JobRequest, JobView

_job_request: TypeAdapter[JobRequest] = TypeAdapter(JobRequest)


class JobTimeout(errors.TenantqError):
    code = "job_timeout"
    http_status = 504


def _error_classes() -> dict[str, type[errors.TenantqError]]:
    found: dict[str, type[errors.TenantqError]] = {}
    pending: list[type[errors.TenantqError]] = [errors.TenantqError]
    while pending:
        cls = pending.pop()
        found.setdefault(cls.code, cls)
        pending.extend(cls.__subclasses__())
    return found


class Client:
    def __init__(self, url: str | None = None, api_key: str | None = None, tenant_id: str | None = None,
                 timeout: float = 30.0) -> None:
        if (url is None) == (tenant_id is None):
            raise errors.ConfigurationError("Give either url and api_key (HTTP) or tenant_id (direct).")
        self.tenant_id = tenant_id
        self._http = None
        if url is not None:
            if not api_key:
                raise errors.ConfigurationError("An HTTP client needs the tenant's api_key.")
            self._http = httpx.Client(base_url=url, timeout=timeout,
                                      headers={"Authorization": f"Bearer {api_key}"})

    def close(self) -> None:
        if self._http is not None:
            self._http.close()

    def __enter__(self) -> Client:
        return self

    def __exit__(self, *_: object) -> None:
        self.close()

    def enqueue(self, kind: str, payload: dict[str, Any], *, idempotency_key: str | None = None,
                priority: str | None = None) -> str:
        body: dict[str, Any] = {"kind": kind, "payload": payload}
        if idempotency_key is not None:
            body["idempotency_key"] = idempotency_key
        if priority is not None:
            body["priority"] = priority
        if self._http is not None:
            return str(self._call("POST", "/v1/jobs", json=body)["job_id"])
        from ingress.submit import submit

        try:
            request = _job_request.validate_python(body)
        except ValidationError as exc:
            raise errors.InvalidJob("The job is invalid; nothing was enqueued.",
                                    fields=exc.errors(include_url=False, include_context=False,
                                                      include_input=False)) from exc
        assert self.tenant_id is not None
        return submit(self.tenant_id, request).job_id

    def get(self, job_id: str) -> JobView:
        if self._http is not None:
            return JobView.model_validate(self._call("GET", f"/v1/jobs/{job_id}"))
        from tenancy.jobs import view

        assert self.tenant_id is not None
        return view(self.tenant_id, job_id)

    def wait(self, job_id: str, timeout: float = 60.0, poll_s: float = 0.2) -> JobView:
        """Poll until the job has ended; JobTimeout when it has not within `timeout` seconds."""
        deadline = time.monotonic() + timeout
        while True:
            job = self.get(job_id)
            if job.status.finished:
                return job
            if time.monotonic() > deadline:
                raise JobTimeout(f"Job still {job.status.value} after {timeout:.0f} s; poll again later.",
                                 job_id=job_id)
            time.sleep(poll_s)

    def _call(self, method: str, path: str, **kwargs: Any) -> dict[str, Any]:
        assert self._http is not None
        response = self._http.request(method, path, **kwargs)
        if response.is_success:
            data: dict[str, Any] = response.json()
            return data
        try:
            error = response.json().get("error", {})
        except ValueError:
            error = {"message": response.text[:500]}
        cls = _error_classes().get(error.get("code", ""), errors.TenantqError)
        context = {k: v for k, v in error.items() if k not in ("code", "message")}
        raise cls(error.get("message", f"HTTP {response.status_code}"), http_status=response.status_code,
                  **context)
