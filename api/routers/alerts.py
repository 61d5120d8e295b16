"""Alert rules (AGG-07, ENG-04): CRUD, and evaluate-now for operators checking a rule.

Tenants: a rule belongs to a tenant (the creator's home tenant or `tenant` in the body, one the
caller sees); names are unique per tenant. Another tenant's rule answers 404 for every route (its
e-mail recipients included: changing them is an edit of the owner's rule). Params may not point at
another tenant's pipeline, schedule, connector or consumer group (422, as for an unknown one).
The SMTP password and other secrets are sealed at rest and shown as `****`; `****` sent back
keeps the stored secret only while the endpoint (smtp_host, smtp_port, username, ssl/starttls)
is unchanged, else 422 naming the field.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends, HTTPException, Request
from pydantic import BaseModel, Field
from sqlalchemy.exc import IntegrityError

from api.alerts import alert_engine_for
from api.alerts.rules import validate
from api.audit.affected import note_affected_tenant
from api.identity.policy import home_tenant
from api.scoping import sees, target_problem
from api.security import Principal, require
from connectors.secrets import EndpointChanged, unmask

router = APIRouter(tags=["alerts"])
MANAGE = Depends(require("alerts:manage"))  # one Depends object: resolved once per request


class Channel(BaseModel):
    smtp_host: str
    smtp_port: int = 25
    from_: str = Field("huiliu@localhost", alias="from")
    to: list[str]
    starttls: bool = False
    ssl: bool = False
    username: str | None = None
    password: str | None = None
    timeout: float = 10.0

    def as_dict(self) -> dict:
        return self.model_dump(by_alias=True)


class RuleIn(BaseModel):
    name: str = Field(min_length=1, max_length=200)
    kind: str = Field(description="task_failed | quarantine_rate | consumer_lag | sink_down")
    params: dict[str, Any] = {}
    channel: Channel | None = None
    throttle_seconds: int = Field(600, ge=0, description="same rule + subject not re-sent within this window")
    interval_seconds: int = Field(30, ge=1, description="how often the rule is evaluated")
    enabled: bool = True
    tenant: str | None = Field(None, max_length=100, description="default: the caller's home tenant")


class RulePatch(BaseModel):
    params: dict[str, Any] | None = None
    channel: Channel | None = None
    throttle_seconds: int | None = Field(None, ge=0)
    interval_seconds: int | None = Field(None, ge=1)
    enabled: bool | None = None


def _store(request: Request):
    return alert_engine_for(request.app).store


def _rule(request: Request, rid: str, principal: Principal, redact: bool = True) -> dict:
    """The rule `rid` (id, or name in the caller's tenants) when the caller sees it, else 404
    (another tenant's reads as missing; its owner is noted for the audit log either way)."""
    found = _store(request).lookup(rid, redact)
    candidates = [r for r in found if r["id"] == rid] or found
    for r in candidates:
        note_affected_tenant(request, r["tenant"])
    visible = [r for r in candidates if sees(principal, r["tenant"])]
    if len(visible) > 1:  # an all-tenant caller and one name in several tenants
        own = [r for r in visible if r["tenant"] == principal.tenant]
        if len(own) != 1:
            raise HTTPException(409, f"several rules are named {rid!r}; use the rule's id")
        visible = own
    if not visible:
        raise HTTPException(404, f"no rule {rid!r}")
    return visible[0]


def _check(request: Request, tenant: str | None, kind: str, params: dict) -> None:
    try:
        validate(kind, params)
    except ValueError as exc:
        raise HTTPException(422, str(exc))
    problem = target_problem(request.app.state.settings, tenant, params)
    if problem:
        raise HTTPException(422, problem)


@router.post("/alerts/rules", status_code=201, summary="Create an alert rule (in your tenant, or `tenant`)")
def create_rule(body: RuleIn, request: Request, principal=MANAGE) -> dict:
    tenant = home_tenant(principal, body.tenant)  # 403 for a tenant the caller does not see
    _check(request, tenant, body.kind, body.params)
    if any(r["tenant"] == tenant for r in _store(request).lookup(body.name)):  # names are per tenant
        raise HTTPException(409, f"rule {body.name!r} exists")
    values = body.model_dump(exclude={"channel", "tenant"})
    try:
        return _store(request).create_rule(
            principal.name, channel=body.channel.as_dict() if body.channel else None, tenant=tenant, **values
        )
    except IntegrityError:  # created meanwhile (or a database from before per-tenant names)
        raise HTTPException(409, f"rule {body.name!r} exists")


@router.get("/alerts/rules", summary="The alert rules of your tenants")
def list_rules(request: Request, principal=MANAGE) -> list[dict]:
    return _store(request).rules(tenants=principal.visible_tenants())


@router.get("/alerts/rules/{rid}", summary="One rule (id or name)")
def get_rule(rid: str, request: Request, principal=MANAGE) -> dict:
    return _rule(request, rid, principal)


@router.patch("/alerts/rules/{rid}", summary="Change a rule")
def patch_rule(rid: str, body: RulePatch, request: Request, principal=MANAGE) -> dict:
    rule = _rule(request, rid, principal, redact=False)
    values = body.model_dump(exclude_unset=True, exclude={"channel"})
    try:  # `****` sent back keeps the stored secret while its endpoint is unchanged
        if "params" in values:
            values["params"] = unmask(values["params"] or {}, rule["params"], path="params")
            _check(request, rule["tenant"], rule["kind"], values["params"])
        if "channel" in body.model_fields_set:
            channel = body.channel.as_dict() if body.channel else None
            if channel is not None and rule["channel"]:
                channel = unmask(channel, rule["channel"], path="channel")
            values["channel"] = channel
    except EndpointChanged as exc:
        raise HTTPException(422, str(exc))
    return _store(request).update_rule(rule["id"], **values)


@router.delete("/alerts/rules/{rid}", status_code=204, summary="Delete a rule")
def delete_rule(rid: str, request: Request, principal=MANAGE) -> None:
    _store(request).delete_rule(_rule(request, rid, principal)["id"])


@router.post("/alerts/rules/{rid}/evaluate", summary="Evaluate a rule now (sends unless throttled)")
def evaluate(rid: str, request: Request, principal=MANAGE) -> dict:
    rule = _rule(request, rid, principal, redact=False)
    return {"alerts": alert_engine_for(request.app).evaluate(rule)}
