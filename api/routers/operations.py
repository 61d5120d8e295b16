"""Operations: component health and per-pipeline stage counts."""
from __future__ import annotations

from fastapi import APIRouter, Depends, HTTPException, Request
from fastapi.concurrency import run_in_threadpool

from api.health import health_report
from api.security import require
from deploy.control import StageCounters

router = APIRouter(tags=["operations"])


@router.get("/health", summary="Health of every component, with latency",
            dependencies=[Depends(require("ops:view"))])
async def health(request: Request) -> dict:
    return await run_in_threadpool(health_report, request.app.state.settings)


@router.get("/pipelines/{name}/stats", summary="Per-stage counts: read, valid, quarantined, written",
            dependencies=[Depends(require("pipeline:view"))])
async def pipeline_stats(name: str, request: Request) -> dict:
    settings = request.app.state.settings
    stages = await run_in_threadpool(StageCounters(settings.resolved_control_db_url, name).read)
    if not stages:
        raise HTTPException(404, f"no statistics for pipeline {name!r}: it has not run yet")
    return {"pipeline": name, "stages": stages}
