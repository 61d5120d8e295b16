"""Prometheus metrics (ENG-01). Scrape with `authorization: {credentials: <api key>}` (Bearer)."""

from __future__ import annotations

from fastapi import APIRouter, Depends, Request, Response
from fastapi.concurrency import run_in_threadpool
from prometheus_client import CONTENT_TYPE_LATEST

from api.metrics import render
from api.security import require

router = APIRouter(tags=["operations"])


@router.get("/metrics", summary="Prometheus text format", dependencies=[Depends(require("ops:view"))])
async def metrics(request: Request) -> Response:
    body = await run_in_threadpool(render, request.app.state.settings)
    return Response(body, media_type=CONTENT_TYPE_LATEST)
