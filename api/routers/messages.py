"""Message centre (GOV-06, ENG-04): alerts raised by rules, newest first.

A message carries the tenant of its subject (the rule, connector or pipeline it is about): callers
see their tenants' messages only; another tenant's message or rule answers 404.
"""

from __future__ import annotations

from fastapi import APIRouter, Depends, HTTPException, Query, Request

from api.alerts import alert_engine_for
from api.audit.affected import note_affected_tenant
from api.scoping import sees
from api.security import Principal, require

router = APIRouter(tags=["messages"])
VIEW = Depends(require("ops:view"))


@router.get("/messages", summary="Messages (alerts) of your tenants, newest first")
def list_messages(
    request: Request,
    category: str | None = None,
    rule: str | None = None,
    since: float | None = None,
    unread: bool = False,
    limit: int = Query(100, ge=1, le=1000),
    principal: Principal = VIEW,
) -> list[dict]:
    store = alert_engine_for(request.app).store
    rule_id = None
    if rule:
        found = store.lookup(rule)
        candidates = [r for r in found if r["id"] == rule] or found
        for r in candidates:
            note_affected_tenant(request, r["tenant"])
        visible = [r for r in candidates if sees(principal, r["tenant"])]
        if not visible:
            raise HTTPException(404, f"no rule {rule!r}")
        own = [r for r in visible if r["tenant"] == principal.tenant]
        rule_id = (own or visible)[0]["id"]
    return store.messages(category, rule_id, since, unread, min(limit, 1000), tenants=principal.visible_tenants())


@router.post("/messages/{mid}/read", summary="Mark a message read")
def mark_read(mid: int, request: Request, principal: Principal = VIEW) -> dict:
    store = alert_engine_for(request.app).store
    exists, tenant = store.message_tenant(mid)
    if exists:
        note_affected_tenant(request, tenant)
    if not exists or not sees(principal, tenant) or not store.mark_read(mid):
        raise HTTPException(404, f"no message {mid}")
    return {"id": mid, "read": True}
