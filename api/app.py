"""FastAPI application factory. Routers per resource; every route is authenticated."""
from __future__ import annotations

from fastapi import Depends, FastAPI, HTTPException
from fastapi.concurrency import run_in_threadpool

from api.auth import api_key_for, require_api_key
from api.health import health_report
from deploy.control import StageCounters
from deploy.settings import Settings, get_settings


def create_app(settings: Settings | None = None) -> FastAPI:
    settings = settings or get_settings()
    app = FastAPI(title="Huiliu", version="0.1.0", description="Streaming data integration and governance",
                  dependencies=[Depends(require_api_key)])
    app.state.settings = settings
    app.state.api_key = api_key_for(settings)

    @app.get("/health", summary="Health of every component, with latency")
    async def health() -> dict:
        return await run_in_threadpool(health_report, settings)

    @app.get("/pipelines/{name}/stats", summary="Per-stage counts: read, valid, quarantined, written")
    async def pipeline_stats(name: str) -> dict:
        stages = await run_in_threadpool(StageCounters(settings.resolved_control_db_url, name).read)
        if not stages:
            raise HTTPException(404, f"no statistics for pipeline {name!r}: it has not run yet")
        return {"pipeline": name, "stages": stages}

    return app
