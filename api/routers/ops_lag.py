"""Consumer lag per group, topic and partition (ENG-01); see api/lag.py for the tansu caveat.

Group names carry connector and pipeline names (`huiliu-connect-<connector>`,
`huiliu-sink-<pipeline>`): a tenant's caller sees the groups of its tenants' connectors and
pipelines only; superusers and all-tenant callers see every group. Sink connectors' groups are
listed with their state (`groups`, and `connector`/`state` on their rows) even before they commit
anything: a sink failing from its first batch shows with everything unread and its last error."""

from __future__ import annotations

from fastapi import APIRouter, Depends, Query, Request
from fastapi.concurrency import run_in_threadpool

from api.lag import consumer_lag
from api.scoping import connector_store, groups_of
from api.security import Principal, require
from connectors.sink_groups import sink_groups

router = APIRouter(tags=["operations"])


def _scoped_lag(settings, principal: Principal, group: list[str] | None, budget: float) -> dict:
    tenants = principal.visible_tenants()
    if tenants is not None:
        own = [g for t in sorted(tenants) for g in groups_of(settings, t)]
        group = [g for g in group if g in own] if group else own
        if not group:  # nothing of the caller's: never "every group"
            return {"partitions": [], "groups": {}, "errors": {}}
    # sink connectors' groups with their state, also when they never committed (a failing sink)
    known = sink_groups(connector_store(settings), settings, tenants)
    return consumer_lag(settings, group, budget, known)


@router.get("/ops/lag", summary="Committed offset, end offset, lag and method per partition (your groups)")
async def lag(
    request: Request,
    group: list[str] | None = Query(None),
    budget: float = Query(5.0, ge=0.1, le=30, description="seconds allowed for confirming end offsets"),
    principal: Principal = Depends(require("ops:view")),
) -> dict:
    return await run_in_threadpool(_scoped_lag, request.app.state.settings, principal, group, budget)
