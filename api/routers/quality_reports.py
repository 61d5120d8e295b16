"""Quality scorecards, column profiles and reports (issue 16). Thin: figures and rendering are
quality_stream/{metrics,profiling,reports}, the wiring api/quality/reporting.py. Everything is kept
per the caller's home tenant (`scope`): another tenant's report or profile reads as unknown (404)."""

from __future__ import annotations

import datetime as dt
from typing import Any, Literal

from fastapi import APIRouter, Depends, HTTPException, Query, Request, Response
from fastapi.concurrency import run_in_threadpool
from pydantic import BaseModel, Field

from api.audit import audit_as
from api.jobs import job_manager
from api.quality import reporting
from api.quality.profile_jobs import Target, profile_and_store, profile_job
from api.security import Principal, require
from deploy.logs import in_tenant
from quality_stream.profiling.profile import ProfileError, check_columns, clickhouse_table_of
from quality_stream.reports.scorecards import scorecards
from quality_stream.reports.store import NotFound

router = APIRouter(tags=["quality"])
MANAGE = Depends(require("quality:manage"))
Kind = Literal["all", "system", "department"]
Period = Literal["daily", "weekly", "monthly"]


def _scope(principal: Principal) -> str:
    return principal.tenant or ""


def _settings(request: Request):
    return request.app.state.settings


def _unavailable(exc: Exception) -> HTTPException:
    return HTTPException(503, {"message": str(exc), "message_zh": "质量指标库（ClickHouse）暂时无法连接"})


@router.get(
    "/quality/scorecards", summary="Quality score per dataset, system or department, by dimension, with its daily trend"
)
def get_scorecards(
    request: Request,
    by: Literal["dataset", "system", "department"] = "dataset",
    days: int = Query(30, ge=1, le=366),
    principal: Principal = MANAGE,
) -> dict[str, Any]:
    settings, scope = _settings(request), _scope(principal)
    end = dt.datetime.now(dt.UTC).date() + dt.timedelta(days=1)  # today included
    start = end - dt.timedelta(days=days)
    try:
        client = reporting.clickhouse(settings)
    except reporting.MetricsUnavailable as exc:  # a dashboard says so instead of failing
        return {"by": by, "start": start.isoformat(), "end": end.isoformat(), "items": [], "unavailable": str(exc)}
    try:
        deps = reporting.departments(settings, client, scope, start, end) if by == "department" else None
        items = scorecards(client, scope, by, start, end, deps)
    finally:
        client.disconnect()
    return {"by": by, "start": start.isoformat(), "end": end.isoformat(), "items": items}


# -- profiles -----------------------------------------------------------------------------------


class ProfileIn(BaseModel):
    model_config = {"extra": "forbid"}
    dataset: str = Field(
        max_length=1000, description="catalogue URN of a ClickHouse table (hl:dataset:clickhouse://...)"
    )
    columns: list[str] | None = Field(None, min_length=1, max_length=200, description="default: every column")


def _clickhouse_table(urn: str) -> str:
    table = clickhouse_table_of(urn)
    if table is None:
        raise HTTPException(
            422,
            {
                "message": "dataset: profiles are computed for ClickHouse tables (hl:dataset:clickhouse://host:port/db.table)",
                "message_zh": "dataset：只能对 ClickHouse 表做剖析",
                "field": "dataset",
            },
        )
    return table


def _profile_target(request: Request, principal: Principal, body: ProfileIn) -> Target:
    """The dataset to profile: 404 when it is not in the caller's catalogue, 422 when not ClickHouse."""
    from api.metadata import catalog_store
    from schemas.catalog.store import NotInCatalogue

    try:
        dataset = catalog_store(_settings(request)).dataset({_scope(principal)}, body.dataset)
    except NotInCatalogue:
        raise HTTPException(404, f"no dataset {body.dataset} in the catalogue / 目录中没有该数据集") from None
    return Target(body.dataset, dataset["version"], _clickhouse_table(body.dataset), body.columns)


@router.post(
    "/quality/profiles", status_code=201, summary="Profile a catalogue dataset's ClickHouse table; suggests rules"
)
def post_profile(request: Request, body: ProfileIn, principal: Principal = MANAGE) -> dict[str, Any]:
    audit_as(request, "quality.profile", dataset=body.dataset)
    target = _profile_target(request, principal, body)
    try:
        saved = profile_and_store(_settings(request), _scope(principal), target, principal.name)
    except reporting.MetricsUnavailable as exc:
        raise _unavailable(exc) from None
    except ProfileError as exc:
        raise HTTPException(422, {"message": str(exc), "field": "dataset"}) from None
    request.state.audit_detail.update(profile=saved["id"], rows=saved["profile"]["rows"])
    return saved


@router.post(
    "/quality/profile-jobs",
    status_code=202,
    summary="Profile a catalogue dataset's ClickHouse table as a message-centre job (progress, cancel); "
    "its result names the stored profile",
)
def post_profile_job(request: Request, body: ProfileIn, principal: Principal = MANAGE) -> dict[str, Any]:
    audit_as(request, "quality.profile.job", dataset=body.dataset)
    settings, scope = _settings(request), _scope(principal)
    target = _profile_target(request, principal, body)
    try:  # a missing table or column answers now, not as a failed job later
        client = reporting.clickhouse(settings)
    except reporting.MetricsUnavailable as exc:
        raise _unavailable(exc) from None
    try:
        check_columns(client, target.table, target.columns)
    except ProfileError as exc:
        raise HTTPException(422, {"message": str(exc), "field": "dataset"}) from None
    finally:
        client.disconnect()
    tenant = principal.tenant if not principal.all_tenants else None
    job = in_tenant(tenant, profile_job(settings, scope, target, principal.name))
    job_id = job_manager(request.app).submit("quality.profile", principal.name, job)
    request.state.audit_detail["job"] = job_id
    return {"job_id": job_id, "dataset": body.dataset, "table": target.table}


@router.get(
    "/quality/profiles", summary="Stored profiles of a catalogue dataset (its versions' statistics), newest first"
)
def get_profiles(
    request: Request,
    dataset: str = Query(max_length=1000),
    version: int | None = Query(None, ge=1, le=1_000_000),
    principal: Principal = MANAGE,
) -> dict[str, Any]:
    items = reporting.report_store(_settings(request)).profiles(_scope(principal), dataset, version)
    return {"items": items}


# -- reports ------------------------------------------------------------------------------------


class ReportIn(BaseModel):
    model_config = {"extra": "forbid"}
    kind: Kind = "all"
    target: str = Field("", max_length=200, description="the system or department (empty for kind all)")
    period: Period = "monthly"
    end: dt.date | None = Field(None, description="first day after the period (default: today, UTC)")
    lang: Literal["zh", "en"] = "zh"
    email: bool = Field(False, description="send it to the subscribers of this kind/target/period")


def _target(kind: str, target: str) -> str:
    if kind != "all" and not target.strip():
        raise HTTPException(
            422, {"message": f"target: name the {kind}", "message_zh": "target：请指定系统或部门", "field": "target"}
        )
    return target.strip() if kind != "all" else ""


@router.post(
    "/quality/reports", status_code=201, summary="Build a quality report now (HTML and PDF, kept with its history)"
)
async def post_report(request: Request, body: ReportIn, principal: Principal = MANAGE) -> dict[str, Any]:
    target = _target(body.kind, body.target)
    audit_as(request, "quality.report", kind=body.kind, target=target, period=body.period)
    if body.end and not dt.date(2000, 1, 1) <= body.end <= dt.date(2999, 1, 1):
        raise HTTPException(422, {"message": "end: out of range", "message_zh": "end 超出范围", "field": "end"})
    try:
        report = await run_in_threadpool(
            reporting.generate,
            _settings(request),
            _scope(principal),
            body.kind,
            target,
            body.period,
            principal.name,
            body.end,
            body.lang,
            body.email,
        )
    except reporting.MetricsUnavailable as exc:
        raise _unavailable(exc) from None
    request.state.audit_detail.update(report=report["id"])
    return report


@router.get("/quality/reports", summary="Reports kept, newest first")
def list_reports(
    request: Request,
    kind: Kind | None = None,
    target: str | None = Query(None, max_length=200),
    limit: int = Query(50, ge=1, le=500),
    offset: int = Query(0, ge=0, le=100_000),
    principal: Principal = MANAGE,
) -> dict[str, Any]:
    items = reporting.report_store(_settings(request)).list(_scope(principal), kind, target, limit, offset)
    return {"items": items}


def _found(fn, *args):
    try:
        return fn(*args)
    except NotFound as exc:
        raise HTTPException(404, str(exc)) from None


@router.get("/quality/reports/{report_id}", summary="A report: its figures")
def get_report(request: Request, report_id: int, principal: Principal = MANAGE) -> dict[str, Any]:
    return _found(reporting.report_store(_settings(request)).get, _scope(principal), report_id)


@router.get("/quality/reports/{report_id}/report.pdf", summary="A report as PDF", response_class=Response)
def get_report_pdf(request: Request, report_id: int, principal: Principal = MANAGE) -> Response:
    pdf = _found(reporting.report_store(_settings(request)).pdf, _scope(principal), report_id)
    headers = {"Content-Disposition": f'attachment; filename="quality-report-{report_id}.pdf"'}
    return Response(pdf, media_type="application/pdf", headers=headers)


@router.get("/quality/reports/{report_id}/report.html", summary="A report as one HTML file", response_class=Response)
def get_report_html(request: Request, report_id: int, principal: Principal = MANAGE) -> Response:
    html = _found(reporting.report_store(_settings(request)).html, _scope(principal), report_id)
    headers = {
        "Content-Disposition": f'attachment; filename="quality-report-{report_id}.html"',
        "Content-Security-Policy": "default-src 'none'; style-src 'unsafe-inline'; img-src data:",
    }
    return Response(html, media_type="text/html; charset=utf-8", headers=headers)


# -- subscriptions ------------------------------------------------------------------------------


class ChannelIn(BaseModel):
    """The alert e-mail channel's shape (api/alerts/notify.py), without credentials."""

    model_config = {"extra": "forbid", "populate_by_name": True}
    smtp_host: str = Field(max_length=200)
    smtp_port: int = Field(25, ge=1, le=65535)
    from_: str = Field("huiliu@localhost", alias="from", max_length=200)
    to: list[str] = Field(min_length=1, max_length=50)
    starttls: bool = False
    ssl: bool = False
    timeout: float = Field(10.0, gt=0, le=120)


class SubscriptionIn(BaseModel):
    model_config = {"extra": "forbid"}
    kind: Kind = "all"
    target: str = Field("", max_length=200)
    period: Period = "monthly"
    channel: ChannelIn


@router.post("/quality/report-subscriptions", status_code=201, summary="Subscribe addresses to a report by e-mail")
def post_subscription(request: Request, body: SubscriptionIn, principal: Principal = MANAGE) -> dict[str, Any]:
    target = _target(body.kind, body.target)
    audit_as(request, "quality.report.subscribe", kind=body.kind, target=target, period=body.period)
    from connectors.probes import HostRefused, check_host

    try:  # the allow-list of hosts this tenant may reach, as for alert e-mails
        check_host(
            _settings(request), principal.tenant, body.channel.smtp_host, body.channel.smtp_port, "channel.smtp_host"
        )
    except HostRefused as exc:
        raise HTTPException(
            422,
            {
                "message": str(exc),
                "message_zh": "channel.smtp_host：该邮件服务器不在允许的主机列表中",
                "field": "channel.smtp_host",
            },
        ) from None
    return reporting.report_store(_settings(request)).subscribe(
        _scope(principal), body.kind, target, body.period, body.channel.model_dump(by_alias=True), principal.name
    )


@router.get("/quality/report-subscriptions", summary="Report subscriptions")
def list_subscriptions(request: Request, principal: Principal = MANAGE) -> dict[str, Any]:
    return {"items": reporting.report_store(_settings(request)).subscriptions(_scope(principal))}


@router.delete("/quality/report-subscriptions/{subscription_id}", status_code=204, summary="Remove a subscription")
def delete_subscription(request: Request, subscription_id: int, principal: Principal = MANAGE) -> Response:
    audit_as(request, "quality.report.unsubscribe", subscription=subscription_id)
    _found(reporting.report_store(_settings(request)).unsubscribe, _scope(principal), subscription_id)
    return Response(status_code=204)
