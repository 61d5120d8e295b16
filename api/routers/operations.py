"""Operations: component health and per-pipeline stage counts."""

from __future__ import annotations

from fastapi import APIRouter, Depends, HTTPException, Request
from fastapi.concurrency import run_in_threadpool

from api.health import health_report
from api.pipelines.access import ensure_pipeline_visible
from api.security import Principal, require
from deploy.control import StageCounters

router = APIRouter(tags=["operations"])


@router.get("/health", summary="Health of every component, with latency")
async def health(request: Request, principal: Principal = Depends(require("ops:view"))) -> dict:
    return await run_in_threadpool(health_report, request.app.state.settings, principal)


@router.get("/pipelines/{name}/stats", summary="Per-stage counts: read, valid, quarantined, written")
async def pipeline_stats(name: str, request: Request, principal: Principal = Depends(require("pipeline:view"))) -> dict:
    # Counts of a pipeline stored for another tenant are as invisible as the pipeline itself.
    await run_in_threadpool(ensure_pipeline_visible, request, principal, name)
    settings = request.app.state.settings
    stages = await run_in_threadpool(StageCounters(settings.resolved_control_db_url, name).read)
    if not stages:
        raise HTTPException(404, f"no statistics for pipeline {name!r}: it has not run yet")
    return {"pipeline": name, "stages": stages}
