"""Data services (数据服务): the list of services with their status, a service's page with its
versions (submit for review with `services:manage`, publish / back to draft and take offline with
`services:review`; the API refuses the author as reviewer and the page shows why), its
applications (the owner approves with the same or fewer fields, a row filter and quotas, rejects,
revokes; the key or signing secret of an approval is shown once), and call monitoring from
`GET /services/{name}/stats` (ECharts: calls per period, p50/p95/p99 latency; top applications and
quota use as tables). Actions are htmx forms answering the versions-and-applications fragment."""

from __future__ import annotations

import json
from typing import Any

from fastapi import APIRouter, Depends, Path, Request
from fastapi.responses import Response

from api.console.backend import Backend, refusal_of
from api.console.i18n import language_of
from api.console.paging import SIZE, asked_offset, pager
from api.console.session import ConsoleRoute, Session, render, signed_in
from streams.dataservices.model import NAME

router = APIRouter(route_class=ConsoleRoute)
NamePath = Path(pattern=NAME)
PERIODS = {"minute": 1, "hour": 24, "day": 24 * 30}  # period -> hours shown


@router.get("/services")
async def services_page(request: Request, session: Session = Depends(signed_in)) -> Response:
    offset = asked_offset(request)
    answer = await Backend(request, session.token).get("/services", params={"limit": SIZE, "offset": offset})
    context: dict[str, Any] = {"services": [], "error": None, "pager": None}
    if answer.status_code == 200:  # a page from the store, not every service's document
        total = int(answer.headers.get("x-total-count") or 0)
        context.update(services=answer.json(), pager=pager(request, offset, total))
    else:
        context["error"] = refusal_of(answer, language_of(request))
    return render(request, "services.html", context, session=session)


async def _body(request: Request, session: Session, name: str, **extra) -> dict[str, Any]:
    """Versions and applications of a service, with what the person may do."""
    api = Backend(request, session.token)
    versions = await api.get(f"/services/{name}/versions")
    if versions.status_code != 200:
        return {"name": name, "error": refusal_of(versions, language_of(request)), "status_code": versions.status_code}
    apps = await api.get(f"/services/{name}/applications")
    return {
        "name": name,
        "versions": versions.json(),
        "applications": apps.json() if apps.status_code == 200 else [],
        "can_manage": session.can("services:manage"),
        "can_review": session.can("services:review"),
        "me": session.principal.name,
        "owner": versions.json()[0]["author"],
        "error": None,
        **extra,
    }


def _chart(stats: dict[str, Any]) -> tuple[str, str]:
    periods = stats.get("periods") or []
    categories = [p["start"].replace("T", " ")[:16] for p in periods]
    calls = {"categories": categories, "series": {"calls": [p["calls"] for p in periods]}}
    latency = {
        "categories": categories,
        "series": {q: [p["latency_ms"][q] for p in periods] for q in ("p50", "p95", "p99")},
    }
    return json.dumps(calls), json.dumps(latency)


@router.get("/services/{name}")
async def service_page(request: Request, name: str = NamePath, session: Session = Depends(signed_in)) -> Response:
    context = await _body(request, session, name)
    if context["error"]:
        return render(request, "service.html", context, status_code=context["status_code"], session=session)
    period = request.query_params.get("period")
    period = period if period in PERIODS else "hour"
    stats = await Backend(request, session.token).get(
        f"/services/{name}/stats", params={"period": period, "hours": PERIODS[period]}
    )
    context.update(period=period, periods=list(PERIODS), stats=None, stats_error=None)
    if stats.status_code == 200:
        context["stats"] = stats.json()
        context["calls_chart"], context["latency_chart"] = _chart(context["stats"])
    else:
        context["stats_error"] = refusal_of(stats, language_of(request))
    return render(request, "service.html", context, session=session)


async def _act(request: Request, session: Session, name: str, path: str, body: dict | None) -> Response:
    """POST to the API, then answer the page's body fragment with the outcome."""
    answer = await Backend(request, session.token).post(path, json=body)
    ok = answer.status_code in (200, 201)
    shown = answer.json() if ok else None
    context = await _body(
        request,
        session,
        name,
        action_error=None if ok else refusal_of(answer, language_of(request)),
        issued=shown if shown and (shown.get("key") or shown.get("secret")) else None,
        done=ok,
    )
    return render(request, "_service_body.html", context, session=session)


@router.post("/services/{name}/submit")
async def submit(request: Request, name: str = NamePath, session: Session = Depends(signed_in)) -> Response:
    return await _act(request, session, name, f"/services/{name}/submit", None)


@router.post("/services/{name}/review")
async def review(request: Request, name: str = NamePath, session: Session = Depends(signed_in)) -> Response:
    form = await request.form()
    body = {"approve": form.get("approve") == "1", "comment": str(form.get("comment") or "")[:2000]}
    return await _act(request, session, name, f"/services/{name}/review", body)


@router.post("/services/{name}/v{version}/offline")
async def offline(
    request: Request, name: str = NamePath, version: int = Path(ge=1), session: Session = Depends(signed_in)
) -> Response:
    return await _act(request, session, name, f"/services/{name}/v{version}/offline", None)


def _whole(raw) -> int | None:
    text = str(raw or "").strip()
    return int(text) if text.isdigit() else None


@router.post("/services/{name}/applications/{app_id}/decision")
async def decide(
    request: Request, name: str = NamePath, app_id: int = Path(ge=1), session: Session = Depends(signed_in)
) -> Response:
    """Approve (the fields ticked: the asked ones or fewer; a row filter `column=value`; quotas) or reject."""
    form = await request.form()
    body: dict[str, Any] = {"approve": form.get("approve") == "1", "comment": str(form.get("comment") or "")[:2000]}
    if body["approve"]:
        body["fields"] = [str(f) for f in form.getlist("fields")] or None
        column, _, value = str(form.get("row_filter") or "").partition("=")
        if column.strip() and value.strip():
            body["row_filter"] = {column.strip(): value.strip()}
        for field in ("quota_daily", "quota_monthly"):
            if _whole(form.get(field)) is not None:
                body[field] = _whole(form.get(field))
    return await _act(request, session, name, f"/services/applications/{app_id}/decision", body)


@router.post("/services/{name}/applications/{app_id}/revoke")
async def revoke(
    request: Request, name: str = NamePath, app_id: int = Path(ge=1), session: Session = Depends(signed_in)
) -> Response:
    return await _act(request, session, name, f"/services/applications/{app_id}/revoke", None)


@router.get("/services/{name}/v{version}/openapi.json")
async def openapi(
    request: Request, name: str = NamePath, version: int = Path(ge=1), session: Session = Depends(signed_in)
) -> Response:
    """The version's OpenAPI document, through the person's token (a link the browser can follow)."""
    answer = await Backend(request, session.token).get(f"/services/{name}/v{version}/openapi.json")
    return Response(answer.content, status_code=answer.status_code, media_type="application/json")
