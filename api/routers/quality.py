"""Quality management (issue 16): browsing what a pipeline's runner quarantined, with every
violation and the original event (values masked for callers without `data:view`). Thin: the
reading is streams/quarantine_read.py, the wiring api/quality."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from fastapi import APIRouter, Depends, Query, Request
from fastapi.concurrency import run_in_threadpool

from api.quality import masked, quarantine_topic_of
from api.security import Principal, require
from streams.quarantine_read import read_quarantine

router = APIRouter(tags=["quality"])


def _ms(value: datetime | None) -> int | None:
    return None if value is None else int(value.timestamp() * 1000)


@router.get(
    "/quality/quarantine",
    summary="Quarantined records of a pipeline, newest first, filtered by rule and time, paged",
)
async def quarantine(
    request: Request,
    pipeline: str = Query(max_length=200, pattern=r"^[A-Za-z0-9_\-]+$"),
    rule: str | None = Query(None, max_length=300),
    since: datetime | None = None,
    until: datetime | None = None,
    limit: int = Query(50, ge=1, le=500),
    offset: int = Query(0, ge=0, le=100_000),
    principal: Principal = Depends(require("quality:manage")),
) -> dict[str, Any]:
    topic = await run_in_threadpool(quarantine_topic_of, request, principal, pipeline)
    settings = request.app.state.settings
    page = await run_in_threadpool(
        read_quarantine,
        settings.kafka_bootstrap,
        settings.schema_registry_url,
        topic,
        rule,
        _ms(since),
        _ms(until),
        limit,
        offset,
    )
    full = principal.can("data:view")
    for item in page["items"]:
        if not full:
            item["event"] = masked(item["event"])
    return {"pipeline": pipeline, "topic": topic, "masked": not full, **page}
