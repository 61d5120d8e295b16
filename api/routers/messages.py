"""Message centre (GOV-06, ENG-04): alerts raised by rules, newest first."""

from __future__ import annotations

from fastapi import APIRouter, Depends, HTTPException, Query, Request

from api.alerts import alert_engine_for
from api.security import require

router = APIRouter(tags=["messages"])


@router.get("/messages", summary="Messages (alerts) newest first", dependencies=[Depends(require("ops:view"))])
def list_messages(
    request: Request,
    category: str | None = None,
    rule: str | None = None,
    since: float | None = None,
    unread: bool = False,
    limit: int = Query(100, ge=1, le=1000),
) -> list[dict]:
    store = alert_engine_for(request.app).store
    rule_id = None
    if rule:
        found = store.get_rule(rule)
        if found is None:
            raise HTTPException(404, f"no rule {rule!r}")
        rule_id = found["id"]
    return store.messages(category, rule_id, since, unread, min(limit, 1000))


@router.post("/messages/{mid}/read", summary="Mark a message read", dependencies=[Depends(require("ops:view"))])
def mark_read(mid: int, request: Request) -> dict:
    if not alert_engine_for(request.app).store.mark_read(mid):
        raise HTTPException(404, f"no message {mid}")
    return {"id": mid, "read": True}
