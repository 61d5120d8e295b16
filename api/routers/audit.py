"""Read the audit log. There is deliberately no route that changes or deletes entries."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from fastapi import APIRouter, Depends, Query, Request
from pydantic import BaseModel

from api.audit import audit_log_for
from api.security import Principal, require

router = APIRouter(tags=["audit"])


class AuditEntry(BaseModel):
    id: int
    at: str
    actor: str
    actor_kind: str
    tenant: str | None
    affected_tenant: str | None = None
    action: str
    permission: str | None
    method: str
    path: str
    status: int
    outcome: str
    client_ip: str | None
    request_id: str | None
    detail: dict[str, Any]


@router.get("/audit", response_model=list[AuditEntry], summary="Audit entries, newest first")
def audit(
    request: Request,
    principal: Principal = Depends(require("audit:view")),
    actor: str | None = Query(None, max_length=200),
    action: str | None = Query(None, max_length=200, description="exact, or a prefix ending in '*'"),
    outcome: str | None = Query(None, pattern="^(success|denied|rejected|error)$"),
    since: datetime | None = None,
    until: datetime | None = None,
    before_id: int | None = Query(None, ge=1, le=2**62, description="page: entries older than this id"),
    limit: int = Query(100, ge=1, le=1000),
) -> list[dict]:
    # People see their own tenant's entries and those touching their tenant (affected_tenant: an
    # attempt on their objects from another tenant); only cross-tenant principals see everything.
    return audit_log_for(request.app.state.settings.resolved_control_db_url).query(
        actor=actor,
        action=action,
        outcome=outcome,
        since=since,
        until=until,
        tenants=principal.visible_tenants(),
        limit=limit,
        before_id=before_id,
    )
