"""For other routers: may this principal see pipeline `name`? (tenant scope and pipeline grants).

from api.pipelines.access import ensure_pipeline_visible
ensure_pipeline_visible(request, principal, name)   # 404 when not, as the pipelines router does
"""

from __future__ import annotations

from fastapi import HTTPException, Request

from api.audit.affected import note_affected_tenant
from api.pipelines.store import pipeline_store_for
from api.security import Principal


def pipeline_visible(request: Request, principal: Principal, name: str) -> bool:
    """Unknown pipelines (e.g. run from a YAML file, never saved through the API) are visible only
    to principals that see every tenant."""
    head = pipeline_store_for(request.app.state.settings).head(name)
    tenant = head["tenant"] if head else None
    note_affected_tenant(request, tenant)  # the owner sees the attempt in its audit log
    return (principal.all_tenants or (head is not None and principal.sees_tenant(tenant))) and principal.may_access(
        "pipeline", name
    )


def ensure_pipeline_visible(request: Request, principal: Principal, name: str) -> None:
    if not pipeline_visible(request, principal, name):
        raise HTTPException(404, f"no pipeline {name!r}")
