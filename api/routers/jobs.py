"""Message centre, jobs part (GOV-06): background jobs with progress, state, operator, result."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends, HTTPException, Query, Request
from fastapi.concurrency import run_in_threadpool
from pydantic import BaseModel, Field

from api.jobs import job_manager
from api.scheduling.actions import ACTIONS
from api.security import require

router = APIRouter(tags=["jobs"])


class JobRequest(BaseModel):
    action: str = Field(description="a registered action, e.g. pipeline.capture, sleep")
    params: dict[str, Any] = {}


def _visible(principal, job: dict | None) -> bool:
    # The message centre is personal: users see their own jobs, superusers (the operator) all.
    return job is not None and (principal.superuser or job["operator"] == principal.name)


@router.get("/jobs", summary="Background jobs, newest first")
async def list_jobs(
    request: Request,
    state: str | None = None,
    type: str | None = None,
    limit: int = Query(100, ge=1, le=1000),
    principal=Depends(require("jobs:manage")),
) -> list[dict]:
    return await run_in_threadpool(
        job_manager(request.app).list, state, type, limit, None if principal.superuser else principal.name
    )


@router.get("/jobs/{job_id}", summary="One job: progress, state, result or error")
async def get_job(job_id: str, request: Request, principal=Depends(require("jobs:manage"))) -> dict:
    job = await run_in_threadpool(job_manager(request.app).get, job_id)
    if not _visible(principal, job):
        raise HTTPException(404, f"no job {job_id!r}")
    return job


@router.post("/jobs", status_code=202, summary="Run a registered action as a background job")
async def submit_job(body: JobRequest, request: Request, principal=Depends(require("jobs:manage"))) -> dict:
    if body.action not in ACTIONS:
        raise HTTPException(422, f"unknown action {body.action!r}; known: {sorted(ACTIONS)}")
    fn, settings, params = ACTIONS[body.action], request.app.state.settings, body.params
    job_id = await run_in_threadpool(
        job_manager(request.app).submit, body.action, principal.name, lambda ctx: fn(ctx, params, settings)
    )
    return await run_in_threadpool(job_manager(request.app).get, job_id)


@router.post("/jobs/{job_id}/cancel", summary="Ask a job to stop")
async def cancel_job(job_id: str, request: Request, principal=Depends(require("jobs:manage"))) -> dict:
    if not _visible(principal, await run_in_threadpool(job_manager(request.app).get, job_id)):
        raise HTTPException(404, f"no job {job_id!r}")
    job = await run_in_threadpool(job_manager(request.app).cancel, job_id)
    if job is None:
        raise HTTPException(404, f"no job {job_id!r}")
    if job["state"] not in ("queued", "running", "cancelled"):
        raise HTTPException(409, f"job {job_id} already {job['state']}")
    return job
