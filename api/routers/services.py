"""Data services (issue 17): services as versioned documents reviewed before publishing, applications
approved by the service's owner with an app key, and the call route serving published versions.
Thin: the domain (documents, review, keys, enforcement) is streams/dataservices, reading ClickHouse
back sinks/clickhouse/reader.py.

`services:manage` writes and submits, `services:review` decides reviews and takes versions offline,
`services:apply` applies for a service and lists its applications; the owner (author of version 1)
decides applications. The call route `GET /services/{name}/v{version}` takes no user credential: the
app key (`X-App-Key`) or a signed request (`X-App-Key-Id`, `X-Timestamp`, `X-Nonce`, `X-Signature`)
is the credential, checked with its scope, expiry, IP allowlist, fields, row filter, rate limit and
quota; every call is logged to ClickHouse off its path (streams/dataservices/calllog.py) and read
back by `GET /services/{name}/stats`. `GET /services/{name}/v{version}/openapi.json` describes a version.
"""

from __future__ import annotations

import json
import threading
import time
from typing import Any, Literal

from fastapi import APIRouter, Body, Depends, HTTPException, Path, Query, Request, Response
from pydantic import BaseModel, Field, ValidationError

from api.audit import audit_as
from api.security import Principal, require
from api.service_access import (
    NamePath,
    app_credential,
    buckets_for,
    classifier,
    service_store,
)
from streams.dataservices import calllog
from streams.dataservices.model import NAME, Conflict, NotFound, Refused, ServiceError, ServiceSpec, problems_of
from streams.dataservices.serving import CallRefused, serve

router = APIRouter(tags=["services"])
MANAGE = require("services:manage")
REVIEW = require("services:review")
APPLY = require("services:apply")


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
    auth: Literal["key", "hmac"] = Field("key", description="key: a plain app key; hmac: signed requests")
    period_days: int | None = Field(None, ge=1, le=3660, description="how long the credential is wanted")
    ip_allowlist: list[str] = Field(default_factory=list, max_length=100, description="CIDRs calls come from")


class ApplicationDecision(BaseModel):
    model_config = {"extra": "forbid"}
    approve: bool
    fields: list[str] | None = Field(None, min_length=1, max_length=500, description="granted: the asked ones or fewer")
    row_filter: dict[str, str | int | float] | None = Field(None, description="column -> value ANDed to every call")
    comment: str = Field("", max_length=2000)
    quota_daily: int | None = Field(None, ge=1, le=1_000_000_000, description="calls per day (UTC+8)")
    quota_monthly: int | None = Field(None, ge=1, le=1_000_000_000, description="calls per month (UTC+8)")
    ip_allowlist: list[str] | None = Field(None, max_length=100, description="CIDRs; unset: as asked")
    period_days: int | None = Field(None, ge=1, le=3660, description="at most the period asked for")


@router.get("/services", summary="Services: the latest version of each (a page with ?limit=&offset=)")
def listing(
    request: Request,
    response: Response,
    limit: int | None = Query(None, ge=1, le=1000, description="a page of this many, by name (default: all)"),
    offset: int = Query(0, ge=0, le=10**9),
    principal: Principal = Depends(APPLY),
) -> list[dict]:
    store = service_store(request)
    if limit:  # the number in all pages, for a pager
        response.headers["X-Total-Count"] = str(store.service_count(_scope(principal)))
    return store.services(_scope(principal), limit, offset)


@router.post("/services", status_code=201, summary="Save a service document as a draft (or the next draft version)")
def save(request: Request, body: Any = Body(...), principal: Principal = Depends(MANAGE)) -> dict:
    audit_as(request, "services.save", name=str(body.get("name"))[:100] if isinstance(body, dict) else None)
    if not isinstance(body, dict):
        raise HTTPException(422, _detail([], "the body is a JSON object", "请求体应为 JSON 对象"))
    try:
        spec = ServiceSpec.model_validate(body)
    except ValidationError as exc:
        raise HTTPException(422, _detail(problems_of(exc), "invalid input", "输入有误")) from None
    saved = _call(service_store(request).save_draft, _scope(principal), spec, principal.name)
    request.state.audit_detail.update(version=saved["version"])
    return saved


@router.get("/services/{name}/versions", summary="A service's versions, oldest first")
def versions(request: Request, name: str = NamePath, principal: Principal = Depends(APPLY)) -> list[dict]:
    return _call(service_store(request).versions, _scope(principal), name)


@router.post("/services/{name}/submit", summary="Submit the service's draft for review")
def submit(request: Request, name: str = NamePath, principal: Principal = Depends(MANAGE)) -> dict:
    audit_as(request, "services.submit", name=name)
    return _call(service_store(request).submit, _scope(principal), name, principal.name)


@router.post("/services/{name}/review", summary="Decide the review: publish, or back to draft (not by the author)")
def review(request: Request, body: Decision, name: str = NamePath, principal: Principal = Depends(REVIEW)) -> dict:
    audit_as(request, "services.review." + ("approve" if body.approve else "reject"), name=name)
    out = _call(service_store(request).decide, _scope(principal), name, principal.name, body.approve, body.comment)
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
    return _call(service_store(request).offline, _scope(principal), name, version, principal.name)


@router.post("/services/{name}/applications", status_code=201, summary="Apply for a published service version")
def apply(request: Request, body: Application, name: str = NamePath, principal: Principal = Depends(APPLY)) -> dict:
    audit_as(request, "services.application.submit", name=name, application=body.application)
    return _call(
        service_store(request).apply,
        _scope(principal),
        name,
        body.version,
        body.application,
        body.purpose,
        body.fields,
        principal.name,
        body.auth,
        body.period_days,
        body.ip_allowlist,
    )


@router.get("/services/{name}/applications", summary="A service's applications (never their keys)")
def applications(request: Request, name: str = NamePath, principal: Principal = Depends(APPLY)) -> list[dict]:
    scope = _scope(principal)
    _call(service_store(request).get, scope, name)
    return service_store(request).applications(scope, name)


@router.post(
    "/services/applications/{app_id}/decision",
    summary="The owner approves (maybe fewer fields, a row filter: the app key is in this answer only) or rejects",
)
def decide_application(
    request: Request, body: ApplicationDecision, app_id: int = Path(ge=1), principal: Principal = Depends(APPLY)
) -> dict:
    audit_as(request, "services.application." + ("approve" if body.approve else "reject"), application_id=app_id)
    out = _call(
        service_store(request).decide_application,
        _scope(principal),
        app_id,
        principal.name,
        body.approve,
        body.fields,
        body.row_filter,
        body.comment,
        body.quota_daily,
        body.quota_monthly,
        body.ip_allowlist,
        body.period_days,
    )
    request.state.audit_detail.update(
        service=out["service"],
        version=out["version"],
        application=out["application"],
        fields=out["fields_granted"],
        row_filter=out["row_filter"],
        key_id=out["key_id"],
        auth=out["auth"],
        ip_allowlist=out["ip_allowlist"],
        quota_daily=out["quota_daily"],
        quota_monthly=out["quota_monthly"],
        expires_at=out["expires_at"],
    )
    return out


@router.post("/services/applications/{app_id}/revoke", summary="Revoke an approved application's key, at once")
def revoke(request: Request, app_id: int = Path(ge=1), principal: Principal = Depends(APPLY)) -> dict:
    audit_as(request, "services.application.revoke", application_id=app_id)
    return _call(service_store(request).revoke, _scope(principal), app_id, principal.name)


_local = threading.local()


def _clickhouse(url: str):
    """This worker thread's ClickHouse client, kept between calls (a connection per call cost more
    than the query), without the driver's ping before each query while the connection is fresh
    (streams/dataservices/clickhouse_clients.py); a dropped one is reconnected on its next query."""
    from streams.dataservices.clickhouse_clients import CallClient

    clients = _local.__dict__.setdefault("clients", {})
    if url not in clients:
        clients[url] = CallClient(url)
    return clients[url]


def _drop_clickhouse(url: str) -> None:
    client = _local.__dict__.get("clients", {}).pop(url, None)
    if client is not None:
        try:
            client.disconnect()
        except Exception:
            pass


def _client_ip(request: Request) -> str:
    return request.client.host if request.client else ""


@router.get(
    "/services/{name}/v{version}",
    summary="Call a published service version with an app key or a signed request: "
    "?<field>=&<field>.in=&<field>.gte=&<field>.lte=&limit=&offset=",
)
def call(
    request: Request,
    name: str = NamePath,
    version: int = Path(ge=1, le=100_000),
    credential: dict = Depends(app_credential),
) -> Response:
    started = time.perf_counter()
    settings = request.app.state.settings
    audit_as(request, "services.call", service=name, version=version)
    request.state.audit_actor = "app-key"
    request.state.audit_batched = True  # an application's calls: the entry is queued, written within 0.2 s
    params = list(request.query_params.multi_items())
    signed = credential.get("signed")
    if signed is not None:
        signed.update(method=request.method, path=request.url.path, query=params, body=b"")
        request.state.audit_detail.update(key_id=signed["key_id"][:40], signed=True)
    info: dict[str, Any] = {}
    status, rows, body, reason = 200, 0, b"", ""
    clickhouse = _clickhouse(settings.clickhouse_url)
    try:
        out = serve(
            service_store(request),
            clickhouse,
            buckets_for(settings.redis_url),
            credential.get("key"),
            name,
            version,
            params,
            classifier(settings.resolved_control_db_url),
            signed=signed,
            client_ip=_client_ip(request),
            info=info,
        )
        rows = out["count"]
        body = json.dumps(out, ensure_ascii=False, default=str).encode()
    except CallRefused as exc:
        status, reason = exc.status, exc.message
        if status == 503:
            _drop_clickhouse(settings.clickhouse_url)
        request.state.audit_detail.update(exc.about)
        request.state.audit_reason = exc.message[:300]
        if "application" in exc.about:
            request.state.audit_actor = f"app:{exc.about['application']}"
        headers = {"Retry-After": str(exc.retry_after)} if exc.retry_after else None
        raise HTTPException(
            exc.status, {"message": exc.message, "message_zh": exc.message_zh}, headers=headers
        ) from None
    except Exception:
        status = 500
        _drop_clickhouse(settings.clickhouse_url)  # a broken connection is not handed to the next call
        raise
    finally:
        _log_call(settings, name, version, info, status, started, rows, len(body), _client_ip(request), reason)
        if info.get("scope"):  # the service's tenant: its admins see the calls in their audit log
            request.state.audit_tenant = info["scope"]
    request.state.audit_actor = f"app:{out['application']}"
    request.state.audit_detail.update(application=out["application"], rows=out["count"], key_id=info.get("key_id"))
    cached = {"X-Huiliu-Cache": info["cache"]} if "cache" in info else None  # a service with a cache TTL
    return Response(body, media_type="application/json", headers=cached)


def _log_call(settings, name, version, info, status, started, rows, size, client_ip, reason) -> None:
    """Into the in-process metrics and the ClickHouse call log's buffer; never raises."""
    latency_ms = (time.perf_counter() - started) * 1000.0
    try:
        calllog.METRICS.observe(name, version, status, latency_ms)
        if "scope" in info:  # calls whose application is known: the log is per tenant
            calllog.call_log(settings.clickhouse_url).record(
                scope=info["scope"],
                service=name,
                version=version,
                application=info.get("application"),
                key_id=info.get("key_id"),
                status=status,
                latency_ms=latency_ms,
                rows=rows,
                bytes=size,
                client_ip=client_ip,
                reason=reason,
            )
    except Exception:  # logging must never fail the call
        pass


@router.get("/services/{name}/v{version}/openapi.json", summary="The OpenAPI description of a service version")
def openapi(
    request: Request,
    name: str = NamePath,
    version: int = Path(ge=1, le=100_000),
    principal: Principal = Depends(APPLY),
) -> dict:
    from sinks.clickhouse import client_from_url
    from sinks.clickhouse.reader import table_columns
    from streams.dataservices.openapi import document

    current = _call(service_store(request).get, _scope(principal), name, version)
    spec = ServiceSpec.model_validate({k: v for k, v in current.items() if k in ServiceSpec.model_fields})
    columns: dict[str, str] = {}
    try:  # types from the table when it answers; the document stands without them
        client = client_from_url(request.app.state.settings.clickhouse_url)
        try:
            columns = table_columns(client, spec.resource.table)
        finally:
            client.disconnect()
    except Exception:
        pass
    return document(spec, version, columns)


@router.get(
    "/services/{name}/stats", summary="Calls, error ratio, latency p50/p95/p99 per period, top applications, quotas"
)
def stats(
    request: Request,
    name: str = NamePath,
    period: Literal["minute", "hour", "day"] = Query("hour"),
    hours: float = Query(24, gt=0, le=24 * 92, description="how far back"),
    principal: Principal = Depends(APPLY),
) -> dict:
    from sinks.clickhouse import client_from_url

    settings = request.app.state.settings
    scope = _scope(principal)
    _call(service_store(request).get, scope, name)
    now = time.time()
    client = client_from_url(settings.clickhouse_url)
    try:
        out = calllog.stats(client, scope, name, period, since=now - hours * 3600, until=now)
    except Exception as exc:
        raise HTTPException(
            503, {"message": "the call log is not answering; retry later", "message_zh": "调用日志暂不可用，请稍后重试"}
        ) from exc
    finally:
        client.disconnect()
    guard = buckets_for(settings.redis_url).guard
    quotas = []
    for app in service_store(request).applications(scope, name):
        if app["status"] != "approved":
            continue
        try:
            used = guard.quota_used(app["key_id"], now)
        except Exception:
            used = {"day": None, "month": None}
        quotas.append(
            {
                "application": app["application"],
                "quota_daily": app["quota_daily"],
                "quota_monthly": app["quota_monthly"],
                "used_today": used["day"],
                "used_this_month": used["month"],
                "expires_at": app["expires_at"],
            }
        )
    out["quotas"] = quotas
    return out
