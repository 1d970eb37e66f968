"""Deprecated dynamic-agent routes (`/api/v1/dynamic/...`), kept for the clients of the old API.

Each is a thin alias: it calls the service of its successor and answers `Deprecation: true` with a `Link` to
the successor (rel="successor-version"), on every answer, errors included; OpenAPI marks them deprecated.
The project is the key's, as on the ERP routes. An agent is named by the job kind it runs.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Query
from fastapi.concurrency import run_in_threadpool
from fastapi.exceptions import RequestValidationError
from fastapi.routing import APIRoute
from pydantic import TypeAdapter, ValidationError
from starlette.types import Message, Receive, Scope, Send

from core.errors import UnknownJobKind
from ingress.routes.project_access import PROJECT_SCOPE, KeyProject
from ingress.submit import submit
from schemas.agents import AgentTemplate
from schemas.executions import ExecuteRequest, ExecutionPage, ExecutionSummary
from schemas.jobs import EnqueueResponse, JobKind, JobRequest, JobStatus, JobView
from tenancy import execution_list, jobs
from tenancy.agent_templates import list_templates
from tenancy.dated_pages import MAX_LIMIT

PREFIX = "/api/v1/dynamic"
SUCCESSORS = {
    "/execute/{agent_id}": "/api/v1/projects/{project_id}/executions",
    "/execution/{execution_id}/status": "/api/v1/projects/{project_id}/executions/{execution_id}",
    "/execution/{execution_id}/result": "/api/v1/projects/{project_id}/executions/{execution_id}/result",
    "/executions": "/api/v1/projects/{project_id}/executions",
    "/templates": "/api/v1/templates",
}
"""Each deprecated route and the route that replaces it (issue 9)."""
AGENTS = sorted(kind.value for kind in JobKind if kind is not JobKind.noop)
_job_request: TypeAdapter[JobRequest] = TypeAdapter(JobRequest)


class DeprecatedRoute(APIRoute):
    """A route whose every answer says it is deprecated and links its successor."""

    def __init__(self, path: str, endpoint: Any, **kwargs: Any) -> None:
        kwargs["deprecated"] = True
        super().__init__(path, endpoint, **kwargs)
        self.successor = SUCCESSORS[path.removeprefix(PREFIX)]

    async def handle(self, scope: Scope, receive: Receive, send: Send) -> None:
        async def deprecating(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = list(message.get("headers", []))
                headers.append((b"deprecation", b"true"))
                link = self._link(scope)
                if link:
                    headers.append((b"link", f'<{link}>; rel="successor-version"'.encode()))
                message = {**message, "headers": headers}
            await send(message)

        await super().handle(scope, receive, deprecating)

    def _link(self, scope: Scope) -> str | None:
        project_id = scope.get(PROJECT_SCOPE)
        if project_id is None and "{project_id}" in self.successor:
            return None  # refused before the project was known: nothing to link to
        return self.successor.format(project_id=project_id, **scope.get("path_params", {}))


router = APIRouter(prefix=PREFIX, tags=["deprecated: dynamic agents"], route_class=DeprecatedRoute)


@router.post("/execute/{agent_id}", status_code=202, response_model=EnqueueResponse)
async def execute(agent_id: str, request: ExecuteRequest, project_id: KeyProject) -> EnqueueResponse:
    if agent_id not in AGENTS:
        raise UnknownJobKind(f"No agent {agent_id!r}; the agents are {', '.join(AGENTS)}. Nothing was enqueued.",
                             tenant_id=project_id)
    try:
        job = _job_request.validate_python({"kind": agent_id, **request.model_dump(exclude_none=True)})
    except ValidationError as exc:
        raise RequestValidationError([{"loc": ("body", *e["loc"]), "msg": e["msg"], "type": e["type"]}
                                      for e in exc.errors(include_url=False)]) from None
    return await run_in_threadpool(submit, project_id, job)


@router.get("/execution/{execution_id}/status", response_model=ExecutionSummary)
async def execution_status(execution_id: str, project_id: KeyProject) -> ExecutionSummary:
    return await run_in_threadpool(execution_list.one, project_id, execution_id)


@router.get("/execution/{execution_id}/result", response_model=JobView)
async def execution_result(execution_id: str, project_id: KeyProject) -> JobView:
    return await run_in_threadpool(jobs.view, project_id, execution_id)


@router.get("/executions", response_model=ExecutionPage)
async def executions(project_id: KeyProject, status: JobStatus | None = None,
                     limit: Annotated[int, Query(ge=1, le=MAX_LIMIT)] = 50,
                     cursor: Annotated[str | None, Query(max_length=500)] = None) -> ExecutionPage:
    return await run_in_threadpool(execution_list.page, project_id, status=status, limit=limit, cursor=cursor)


@router.get("/templates", response_model=list[AgentTemplate])
async def templates(project_id: KeyProject) -> list[AgentTemplate]:
    return await run_in_threadpool(list_templates)
