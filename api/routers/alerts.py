"""Alert rules (AGG-07, ENG-04): CRUD, and evaluate-now for operators checking a rule."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends, HTTPException, Request
from pydantic import BaseModel, Field

from api.alerts import alert_engine_for
from api.alerts.rules import validate
from api.security import require

router = APIRouter(tags=["alerts"])
MANAGE = Depends(require("alerts:manage"))


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


class RulePatch(BaseModel):
    params: dict[str, Any] | None = None
    channel: Channel | None = None
    throttle_seconds: int | None = Field(None, ge=0)
    interval_seconds: int | None = Field(None, ge=1)
    enabled: bool | None = None


def _store(request: Request):
    return alert_engine_for(request.app).store


@router.post("/alerts/rules", status_code=201, summary="Create an alert rule")
def create_rule(body: RuleIn, request: Request, principal=MANAGE) -> dict:
    try:
        validate(body.kind, body.params)
    except ValueError as exc:
        raise HTTPException(422, str(exc))
    if _store(request).get_rule(body.name):
        raise HTTPException(409, f"rule {body.name!r} exists")
    values = body.model_dump(exclude={"channel"})
    return _store(request).create_rule(
        principal.name, channel=body.channel.as_dict() if body.channel else None, **values
    )


@router.get("/alerts/rules", summary="All alert rules", dependencies=[MANAGE])
def list_rules(request: Request) -> list[dict]:
    return _store(request).rules()


@router.get("/alerts/rules/{rid}", summary="One rule (id or name)", dependencies=[MANAGE])
def get_rule(rid: str, request: Request) -> dict:
    rule = _store(request).get_rule(rid)
    if rule is None:
        raise HTTPException(404, f"no rule {rid!r}")
    return rule


@router.patch("/alerts/rules/{rid}", summary="Change a rule", dependencies=[MANAGE])
def patch_rule(rid: str, body: RulePatch, request: Request) -> dict:
    rule = get_rule(rid, request)
    values = body.model_dump(exclude_unset=True, exclude={"channel"})
    if "params" in values:
        try:
            validate(rule["kind"], values["params"])
        except ValueError as exc:
            raise HTTPException(422, str(exc))
    if "channel" in body.model_fields_set:
        values["channel"] = body.channel.as_dict() if body.channel else None
    return _store(request).update_rule(rule["id"], **values)


@router.delete("/alerts/rules/{rid}", status_code=204, summary="Delete a rule", dependencies=[MANAGE])
def delete_rule(rid: str, request: Request) -> None:
    _store(request).delete_rule(get_rule(rid, request)["id"])


@router.post(
    "/alerts/rules/{rid}/evaluate", summary="Evaluate a rule now (sends unless throttled)", dependencies=[MANAGE]
)
def evaluate(rid: str, request: Request) -> dict:
    get_rule(rid, request)
    engine = alert_engine_for(request.app)
    return {"alerts": engine.evaluate(engine.store.get_rule(rid, redact=False))}
