"""Prometheus metrics (ENG-01). Scrape with `authorization: {credentials: <api key>}` (Bearer).

A tenant's caller gets the samples of its tenants' pipelines, connectors and consumer groups and
the installation-wide counts; superusers and all-tenant callers (the usual scraper) get all."""

from __future__ import annotations

import re

from fastapi import APIRouter, Depends, Request, Response
from fastapi.concurrency import run_in_threadpool
from prometheus_client import CONTENT_TYPE_LATEST

from api.metrics import render
from api.pipelines.store import pipeline_store_for
from api.scoping import connector_store, groups_of
from api.security import Principal, require

router = APIRouter(tags=["operations"])


# Labels naming a tenant's object: a pipeline or connector (stage counters, sink latency) or a
# consumer group (lag), a data service. Samples without them are installation-wide counts (jobs, schedules, workers).
_NAMED = re.compile(r'(?:^|[{,])(pipeline|sink|group|service)="((?:[^"\\]|\\.)*)"')


def _scoped(settings, principal: Principal) -> bytes:
    """The exposition; for a tenant's caller without the samples of other tenants' objects."""
    body = render(settings)
    tenants = principal.visible_tenants()
    if tenants is None:
        return body
    names: set[str] = set()
    for tenant in tenants:
        names.update(connector_store(settings).names({tenant}))
        names.update(h["name"] for h in pipeline_store_for(settings).list({tenant}))
        names.update(groups_of(settings, tenant))
        names.update(_service_names(settings, tenant))
    kept = []
    for line in body.decode().splitlines():
        labels = line[line.find("{") : line.find("}") + 1] if not line.startswith("#") and "{" in line else ""
        if all(value in names for _, value in _NAMED.findall(labels)):
            kept.append(line)
    return ("\n".join(kept) + "\n").encode()


def _service_names(settings, tenant: str) -> set[str]:
    from api.service_access import store_for

    return {s["name"] for s in store_for(settings.resolved_control_db_url).services(tenant)}


@router.get("/metrics", summary="Prometheus text format (a tenant's caller: its own pipelines and connectors)")
async def metrics(request: Request, principal: Principal = Depends(require("ops:view"))) -> Response:
    body = await run_in_threadpool(_scoped, request.app.state.settings, principal)
    return Response(body, media_type=CONTENT_TYPE_LATEST)
