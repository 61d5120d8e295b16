"""Requests for access to catalogue datasets (issue 17: "request access" on any dataset). Thin: the
domain is streams/dataservices/access_requests.py.

`services:apply` asks (`POST /access-requests`), lists what it asked and what waits for it as a
dataset's owner (`GET /access-requests`), and decides as the owner named in the catalogue, a user or
one of the person's groups (`POST /access-requests/{request_id}/decision`): an approval answers the
app key (or signing secret) once, as an application's approval does.
"""

from __future__ import annotations

from typing import Literal

from fastapi import APIRouter, Depends, Path, Query, Request
from pydantic import BaseModel, Field

from api.audit import audit_as
from api.routers.services import _call, _scope
from api.security import Principal, require
from api.service_access import service_store
from streams.dataservices.model import NAME

router = APIRouter(tags=["services"])
APPLY = require("services:apply")


def access_requests(request: Request):
    from deploy.control import engine_for
    from streams.dataservices.access_requests import AccessRequests

    settings = request.app.state.settings
    return AccessRequests(engine_for(settings.resolved_control_db_url), service_store(request))


def identities(request: Request, principal: Principal) -> set[str]:
    """The person's name and groups (`g` and `group:g`): a dataset's owner may be either."""
    out = {principal.name}
    if principal.kind == "user":
        from api.identity.store import store_for

        user = store_for(request.app.state.settings.resolved_control_db_url).user(principal.name) or {}
        for group in user.get("groups") or []:
            out |= {group, f"group:{group}"}
    return out


class AccessRequest(BaseModel):
    model_config = {"extra": "forbid"}
    dataset: str = Field(min_length=1, max_length=1000, description="the catalogue dataset's URN")
    application: str = Field(pattern=NAME, description="the consuming application's name")
    purpose: str = Field(min_length=1, max_length=2000)
    fields: list[str] = Field(min_length=1, max_length=500, description="the dataset's fields wanted")
    period_days: int | None = Field(None, ge=1, le=3660, description="how long access is wanted")
    auth: Literal["key", "hmac"] = Field("key", description="key: a plain app key; hmac: signed requests")
    ip_allowlist: list[str] = Field(default_factory=list, max_length=100, description="CIDRs calls come from")


class AccessDecision(BaseModel):
    model_config = {"extra": "forbid"}
    approve: bool
    fields: list[str] | None = Field(None, min_length=1, max_length=500, description="granted: the asked ones or fewer")
    comment: str = Field("", max_length=2000)
    service: str | None = Field(None, pattern=NAME, description="the published service to grant; unset: the newest")
    version: int | None = Field(None, ge=1, le=100_000)
    row_filter: dict[str, str | int | float] | None = Field(None, description="column -> value ANDed to every call")


@router.post("/access-requests", status_code=201, summary="Request access to a catalogue dataset")
def ask(request: Request, body: AccessRequest, principal: Principal = Depends(APPLY)) -> dict:
    audit_as(request, "services.access_request.submit", dataset=body.dataset[:300], application=body.application)
    out = _call(
        access_requests(request).ask,
        _scope(principal),
        body.dataset,
        body.application,
        body.purpose,
        body.fields,
        principal.name,
        body.auth,
        body.period_days,
        body.ip_allowlist,
    )
    request.state.audit_detail.update(request_id=out["id"], owner=out["owner"])
    return out


@router.get("/access-requests", summary="Access requests I made or decide as a dataset's owner")
def listing(
    request: Request,
    dataset: str | None = Query(None, max_length=1000),
    principal: Principal = Depends(APPLY),
) -> list[dict]:
    return access_requests(request).listing(_scope(principal), identities(request, principal), dataset)


@router.post(
    "/access-requests/{request_id}/decision",
    summary="The dataset's owner approves (maybe fewer fields: the app key is in this answer only) or rejects",
)
def decide(
    request: Request, body: AccessDecision, request_id: int = Path(ge=1), principal: Principal = Depends(APPLY)
) -> dict:
    audit_as(request, "services.access_request." + ("approve" if body.approve else "reject"), request_id=request_id)
    out = _call(
        access_requests(request).decide,
        _scope(principal),
        request_id,
        principal.name,
        identities(request, principal),
        body.approve,
        body.fields,
        body.comment,
        body.service,
        body.version,
        body.row_filter,
    )
    request.state.audit_detail.update(
        dataset=out["dataset"][:300],
        application=out["application"],
        fields=out["fields_granted"],
        service=out["service"],
        version=out["version"],
        key_id=out.get("key_id"),
    )
    return out
