"""Projects (admin token): create one with its first API key, list them, read one."""

from __future__ import annotations

from fastapi import APIRouter, Depends
from fastapi.concurrency import run_in_threadpool

from ingress.auth import admin
from ingress.project_auth import ADMIN_ACTOR
from ingress.routes.paging import DEFAULT, Cursor, Limit
from schemas.orchestration import Page, Project, ProjectCreate, ProjectCreated
from tenancy import projects

router = APIRouter(prefix="/api/v1/master/projects", dependencies=[Depends(admin)], tags=["master: projects"])


@router.post("", status_code=201, response_model=ProjectCreated)
async def create_project(spec: ProjectCreate) -> ProjectCreated:
    project, key = await run_in_threadpool(projects.create, spec, ADMIN_ACTOR)
    return ProjectCreated(project=project, api_key=key)


@router.get("", response_model=Page[Project])
async def list_projects(limit: Limit = DEFAULT, cursor: Cursor = None) -> Page[Project]:
    return await run_in_threadpool(projects.list_projects, limit, cursor)


@router.get("/{project_id}", response_model=Project)
async def get_project(project_id: str) -> Project:
    return await run_in_threadpool(projects.get, project_id)
