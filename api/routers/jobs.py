"""Message centre, jobs part (GOV-06): background jobs with progress, state, operator, result."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends, HTTPException, Query, Request
from fastapi.concurrency import run_in_threadpool
from pydantic import BaseModel, Field

from api.jobs import job_manager
from api.scheduling.actions import ACTIONS, Scope, bind, check_params
from api.scoping import target_problem
from api.security import authenticated, require
from connectors.paths import PathRefused
from connectors.probes import HostRefused

router = APIRouter(tags=["jobs"])


class JobRequest(BaseModel):
    action: str = Field(description="a registered action, e.g. pipeline.capture, sleep")
    params: dict[str, Any] = {}


def _visible(principal, job: dict | None) -> bool:
    # The message centre is personal: users see their own jobs, superusers (the operator) all.
    return job is not None and (principal.superuser or job["operator"] == principal.name)


def own_jobs(request: Request, principal=Depends(authenticated)):
    """Any signed-in caller reads and cancels the jobs they started, whatever started them (a
    steward's quarantine replay job needs quality:manage, not jobs:manage); others' jobs stay
    out of sight (`_visible`). The audit entry names jobs:manage when the caller holds it."""
    if principal.can("jobs:manage"):
        request.state.permission = "jobs:manage"
    return principal


@router.get("/jobs", summary="Background jobs, newest first (the caller's own; the operator: all)")
async def list_jobs(
    request: Request,
    state: str | None = None,
    type: str | None = None,
    limit: int = Query(100, ge=1, le=1000),
    principal=Depends(own_jobs),
) -> list[dict]:
    return await run_in_threadpool(
        job_manager(request.app).list, state, type, limit, None if principal.superuser else principal.name
    )


@router.get("/jobs/{job_id}", summary="One job: progress, state, result or error")
async def get_job(job_id: str, request: Request, principal=Depends(own_jobs)) -> dict:
    job = await run_in_threadpool(job_manager(request.app).get, job_id)
    if not _visible(principal, job):
        raise HTTPException(404, f"no job {job_id!r}")
    return job


@router.post("/jobs", status_code=202, summary="Run a registered action as a background job")
async def submit_job(body: JobRequest, request: Request, principal=Depends(require("jobs:manage"))) -> dict:
    if body.action not in ACTIONS:
        raise HTTPException(422, f"unknown action {body.action!r}; known: {sorted(ACTIONS)}")
    settings, scope = request.app.state.settings, Scope.of(principal)
    problem = None if principal.all_tenants else target_problem(settings, principal.tenant, body.params)
    if problem:  # another tenant's pipeline/connector reads as unknown (api.scoping)
        raise HTTPException(422, problem)
    try:  # paths inside the caller's data root, hosts on the tenant's allow-list: else 422
        await run_in_threadpool(check_params, body.action, body.params, settings, scope)
    except (PathRefused, HostRefused) as exc:
        raise HTTPException(422, str(exc)) from None
    job_fn = bind(body.action, body.params, settings, scope)
    job_id = await run_in_threadpool(job_manager(request.app).submit, body.action, principal.name, job_fn)
    return await run_in_threadpool(job_manager(request.app).get, job_id)


@router.post("/jobs/{job_id}/cancel", summary="Ask a job to stop (one's own; the operator: any)")
async def cancel_job(job_id: str, request: Request, principal=Depends(own_jobs)) -> dict:
    if not _visible(principal, await run_in_threadpool(job_manager(request.app).get, job_id)):
        raise HTTPException(404, f"no job {job_id!r}")
    job = await run_in_threadpool(job_manager(request.app).cancel, job_id)
    if job is None:
        raise HTTPException(404, f"no job {job_id!r}")
    if job["state"] not in ("queued", "running", "cancelled"):
        raise HTTPException(409, f"job {job_id} already {job['state']}")
    return job
