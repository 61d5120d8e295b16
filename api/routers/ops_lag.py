"""Consumer lag per group, topic and partition (ENG-01); see api/lag.py for the tansu caveat."""

from __future__ import annotations

from fastapi import APIRouter, Depends, Query, Request
from fastapi.concurrency import run_in_threadpool

from api.lag import consumer_lag
from api.security import require

router = APIRouter(tags=["operations"])


@router.get(
    "/ops/lag",
    summary="Committed offset, end offset, lag and method per partition",
    dependencies=[Depends(require("ops:view"))],
)
async def lag(
    request: Request,
    group: list[str] | None = Query(None),
    budget: float = Query(5.0, ge=0.1, le=30, description="seconds allowed for confirming end offsets"),
) -> dict:
    return await run_in_threadpool(consumer_lag, request.app.state.settings, group, budget)
