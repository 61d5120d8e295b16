"""Data services (issue 17): services as versioned documents reviewed before publishing, applications
approved by the service's owner with an app key, and the call route serving published versions.
Thin: the domain (documents, review, keys, enforcement) is streams/dataservices, reading ClickHouse
back sinks/clickhouse/reader.py.

`services:manage` writes and submits, `services:review` decides reviews and takes versions offline,
`services:apply` applies for a service and lists its applications; the owner (author of version 1)
decides applications. The call route `GET /services/{name}/v{version}` takes no user credential: the
app key (`X-App-Key`) is the credential, checked with its scope, fields, row filter and rate limit.
"""

from __future__ import annotations

from functools import lru_cache
from typing import Any

from fastapi import APIRouter, Body, Depends, Header, HTTPException, Path, Request
from pydantic import BaseModel, Field, ValidationError

from api.audit import audit_as
from api.security import Principal, require
from streams.dataservices.model import NAME, Conflict, NotFound, Refused, ServiceError, ServiceSpec, problems_of
from streams.dataservices.serving import CallRefused, TokenBuckets, serve, split_key
from streams.dataservices.store import ServiceStore

router = APIRouter(tags=["services"])
MANAGE = require("services:manage")
REVIEW = require("services:review")
APPLY = require("services:apply")
NamePath = Path(pattern=NAME, description="the service's name")


@lru_cache(maxsize=8)
def _store_for(url: str) -> ServiceStore:
    from deploy.control import engine_for

    return ServiceStore(engine_for(url))


@lru_cache(maxsize=8)
def _buckets_for(url: str) -> TokenBuckets:
    import redis

    return TokenBuckets(redis.Redis.from_url(url, socket_timeout=2, socket_connect_timeout=2))


@lru_cache(maxsize=8)
def _catalog_for(url: str):
    from deploy.control import engine_for
    from schemas.catalog.store import CatalogStore

    return CatalogStore(engine_for(url))


def _classifier(url: str):
    """scope, dataset URN -> {field: classification level} (a field's own, else its dataset's)."""

    def classify(scope: str, urn: str) -> dict[str, str | None]:
        ds = _catalog_for(url).dataset({scope}, urn)
        default = ds["business"].get("classification")
        return {f["name"]: f["business"].get("classification") or default for f in ds["fields"]}

    return classify


def _store(request: Request) -> ServiceStore:
    return _store_for(request.app.state.settings.resolved_control_db_url)


def _scope(principal: Principal) -> str:
    return principal.tenant or ""


def _detail(problems: list[dict], message: str, message_zh: str) -> dict:
    return {"message": message, "message_zh": message_zh, "problems": problems[:200]}


def _call(fn, *args, **kwargs):
    try:
        return fn(*args, **kwargs)
    except NotFound as exc:
        raise HTTPException(404, str(exc)) from None
    except Refused as exc:
        raise HTTPException(403, _detail(exc.problems, "refused", "不允许此操作")) from None
    except Conflict as exc:
        raise HTTPException(409, _detail(exc.problems, "not possible in this state", "当前状态下不能这样做")) from None
    except ServiceError as exc:
        raise HTTPException(422, _detail(exc.problems, "invalid input", "输入有误")) from None


class Decision(BaseModel):
    model_config = {"extra": "forbid"}
    approve: bool
    comment: str = Field("", max_length=2000)


class Application(BaseModel):
    model_config = {"extra": "forbid"}
    application: str = Field(pattern=NAME, description="the consuming application's name")
    version: int = Field(ge=1, le=100_000)
    purpose: str = Field(min_length=1, max_length=2000)
    fields: list[str] = Field(min_length=1, max_length=500)


class ApplicationDecision(BaseModel):
    model_config = {"extra": "forbid"}
    approve: bool
    fields: list[str] | None = Field(None, min_length=1, max_length=500, description="granted: the asked ones or fewer")
    row_filter: dict[str, str | int | float] | None = Field(None, description="column -> value ANDed to every call")
    comment: str = Field("", max_length=2000)


@router.get("/services", summary="Services: the latest version of each")
def listing(request: Request, principal: Principal = Depends(APPLY)) -> list[dict]:
    return _store(request).services(_scope(principal))


@router.post("/services", status_code=201, summary="Save a service document as a draft (or the next draft version)")
def save(request: Request, body: Any = Body(...), principal: Principal = Depends(MANAGE)) -> dict:
    audit_as(request, "services.save", name=str(body.get("name"))[:100] if isinstance(body, dict) else None)
    if not isinstance(body, dict):
        raise HTTPException(422, _detail([], "the body is a JSON object", "请求体应为 JSON 对象"))
    try:
        spec = ServiceSpec.model_validate(body)
    except ValidationError as exc:
        raise HTTPException(422, _detail(problems_of(exc), "invalid input", "输入有误")) from None
    saved = _call(_store(request).save_draft, _scope(principal), spec, principal.name)
    request.state.audit_detail.update(version=saved["version"])
    return saved


@router.get("/services/{name}/versions", summary="A service's versions, oldest first")
def versions(request: Request, name: str = NamePath, principal: Principal = Depends(APPLY)) -> list[dict]:
    return _call(_store(request).versions, _scope(principal), name)


@router.post("/services/{name}/submit", summary="Submit the service's draft for review")
def submit(request: Request, name: str = NamePath, principal: Principal = Depends(MANAGE)) -> dict:
    audit_as(request, "services.submit", name=name)
    return _call(_store(request).submit, _scope(principal), name, principal.name)


@router.post("/services/{name}/review", summary="Decide the review: publish, or back to draft (not by the author)")
def review(request: Request, body: Decision, name: str = NamePath, principal: Principal = Depends(REVIEW)) -> dict:
    audit_as(request, "services.review." + ("approve" if body.approve else "reject"), name=name)
    out = _call(_store(request).decide, _scope(principal), name, principal.name, body.approve, body.comment)
    request.state.audit_detail.update(version=out["version"], status=out["status"])
    return out


@router.post("/services/{name}/v{version}/offline", summary="Take a published version offline (no longer served)")
def offline(
    request: Request,
    name: str = NamePath,
    version: int = Path(ge=1, le=100_000),
    principal: Principal = Depends(REVIEW),
) -> dict:
    audit_as(request, "services.offline", name=name, version=version)
    return _call(_store(request).offline, _scope(principal), name, version, principal.name)


@router.post("/services/{name}/applications", status_code=201, summary="Apply for a published service version")
def apply(request: Request, body: Application, name: str = NamePath, principal: Principal = Depends(APPLY)) -> dict:
    audit_as(request, "services.application.submit", name=name, application=body.application)
    return _call(
        _store(request).apply,
        _scope(principal),
        name,
        body.version,
        body.application,
        body.purpose,
        body.fields,
        principal.name,
    )


@router.get("/services/{name}/applications", summary="A service's applications (never their keys)")
def applications(request: Request, name: str = NamePath, principal: Principal = Depends(APPLY)) -> list[dict]:
    scope = _scope(principal)
    _call(_store(request).get, scope, name)
    return _store(request).applications(scope, name)


@router.post(
    "/services/applications/{app_id}/decision",
    summary="The owner approves (maybe fewer fields, a row filter: the app key is in this answer only) or rejects",
)
def decide_application(
    request: Request, body: ApplicationDecision, app_id: int = Path(ge=1), principal: Principal = Depends(APPLY)
) -> dict:
    audit_as(request, "services.application." + ("approve" if body.approve else "reject"), application_id=app_id)
    out = _call(
        _store(request).decide_application,
        _scope(principal),
        app_id,
        principal.name,
        body.approve,
        body.fields,
        body.row_filter,
        body.comment,
    )
    request.state.audit_detail.update(
        service=out["service"],
        version=out["version"],
        application=out["application"],
        fields=out["fields_granted"],
        row_filter=out["row_filter"],
        key_id=out["key_id"],
    )
    return out


@router.post("/services/applications/{app_id}/revoke", summary="Revoke an approved application's key, at once")
def revoke(request: Request, app_id: int = Path(ge=1), principal: Principal = Depends(APPLY)) -> dict:
    audit_as(request, "services.application.revoke", application_id=app_id)
    return _call(_store(request).revoke, _scope(principal), app_id, principal.name)


def _app_key(x_app_key: str | None = Header(None, max_length=200)) -> str:
    """The call route's credential, checked before its parameters: a call without an app key is
    401 whatever else is wrong with it (a platform user's token is no credential here)."""
    if not x_app_key or split_key(x_app_key) is None:
        raise HTTPException(
            401,
            {
                "message": "an app key is required (X-App-Key: hls_...)",
                "message_zh": "需要应用密钥（X-App-Key: hls_...）",
            },
            headers={"WWW-Authenticate": "X-App-Key"},
        )
    return x_app_key


@router.get(
    "/services/{name}/v{version}",
    summary="Call a published service version with an app key: ?<field>=&<field>.in=&<field>.gte=&<field>.lte=&limit=&offset=",
)
def call(
    request: Request,
    name: str = NamePath,
    version: int = Path(ge=1, le=100_000),
    x_app_key: str = Depends(_app_key),
) -> dict:
    from sinks.clickhouse import client_from_url

    settings = request.app.state.settings
    audit_as(request, "services.call", service=name, version=version)
    request.state.audit_actor = "app-key"
    clickhouse = client_from_url(settings.clickhouse_url)
    try:
        out = serve(
            _store(request),
            clickhouse,
            _buckets_for(settings.redis_url),
            x_app_key,
            name,
            version,
            list(request.query_params.multi_items()),
            _classifier(settings.resolved_control_db_url),
        )
    except CallRefused as exc:
        request.state.audit_detail.update(exc.about)
        request.state.audit_reason = exc.message[:300]
        if "application" in exc.about:
            request.state.audit_actor = f"app:{exc.about['application']}"
        headers = {"Retry-After": str(exc.retry_after)} if exc.retry_after else None
        raise HTTPException(
            exc.status, {"message": exc.message, "message_zh": exc.message_zh}, headers=headers
        ) from None
    finally:
        clickhouse.disconnect()
    request.state.audit_actor = f"app:{out['application']}"
    request.state.audit_detail.update(application=out["application"], rows=out["count"])
    return out
