"""Quality reports and scorecards (质量报告 / 质量评分): the reports kept (newest first) with a form
to build one now (`POST /quality/reports`), a report's figures with ECharts charts (problems by
dimension, daily score against the previous period, problems by rule) and its PDF/HTML through the
person's token, and the scorecards per dataset, system or department (`GET /quality/scorecards`)."""

from __future__ import annotations

import json
from typing import Any

from fastapi import APIRouter, Depends, Path, Request
from fastapi.responses import RedirectResponse, Response

from api.console.backend import Backend, refusal_of
from api.console.i18n import language_of
from api.console.session import ConsoleRoute, Session, render, signed_in

router = APIRouter(route_class=ConsoleRoute)
KINDS = ("all", "system", "department")
PERIODS = ("daily", "weekly", "monthly")
BY = ("dataset", "system", "department")


@router.get("/quality/reports")
async def reports_page(request: Request, session: Session = Depends(signed_in)) -> Response:
    answer = await Backend(request, session.token).get("/quality/reports", params={"limit": 100})
    context: dict[str, Any] = {"reports": [], "error": None, "kinds": KINDS, "periods": PERIODS, "form_error": None}
    if answer.status_code == 200:
        context["reports"] = answer.json()["items"]
    else:
        context["error"] = refusal_of(answer, language_of(request))
    return render(
        request,
        "reports.html",
        context,
        status_code=200 if not context["error"] else answer.status_code,
        session=session,
    )


@router.post("/quality/reports")
async def build_report(request: Request, session: Session = Depends(signed_in)) -> Response:
    form = await request.form()
    kind = str(form.get("kind") or "all")
    body = {
        "kind": kind,
        "target": str(form.get("target") or "")[:200],
        "period": str(form.get("period") or "monthly"),
        "lang": "en" if language_of(request) == "en" else "zh",
    }
    answer = await Backend(request, session.token).post("/quality/reports", json=body)
    if answer.status_code == 201:
        return RedirectResponse(f"/console/quality/reports/{answer.json()['id']}", status_code=303)
    listed = await Backend(request, session.token).get("/quality/reports", params={"limit": 100})
    context = {
        "reports": listed.json()["items"] if listed.status_code == 200 else [],
        "error": None,
        "kinds": KINDS,
        "periods": PERIODS,
        "form_error": refusal_of(answer, language_of(request)),
    }
    return render(request, "reports.html", context, status_code=answer.status_code, session=session)


def _charts(s: dict[str, Any], names: dict[str, str]) -> dict[str, str]:
    dims = s["by_dimension"]
    trend = s["trend"]
    rules = s["by_rule"][:10]
    return {
        "dimension": json.dumps(
            {
                "categories": [names.get(d["dimension"], d["dimension"]) for d in dims],
                "series": {"ratio": [round(100 * d["ratio"], 4) for d in dims]},
            },
            ensure_ascii=False,
        ),
        "trend": json.dumps(
            {
                "categories": [t["day"] for t in trend],
                "series": {
                    "previous": [t["score"] if t["day"] < s["start"] else None for t in trend],
                    "current": [t["score"] if t["day"] >= s["start"] else None for t in trend],
                },
            }
        ),
        "rule": json.dumps(
            {"categories": [r["rule"] for r in rules], "series": {"failed": [r["failed"] for r in rules]}}
        ),
    }


@router.get("/quality/reports/{report_id}")
async def report_page(
    request: Request, report_id: int = Path(ge=1, le=2**31 - 1), session: Session = Depends(signed_in)
) -> Response:
    answer = await Backend(request, session.token).get(f"/quality/reports/{report_id}")
    if answer.status_code != 200:
        context = {"report": None, "error": refusal_of(answer, language_of(request))}
        return render(request, "report.html", context, status_code=answer.status_code, session=session)
    report = answer.json()
    from api.console.i18n import catalogue

    messages = catalogue(language_of(request))
    names = {
        d: messages.gettext(f"reports.dim.{d}")
        for d in ("completeness", "validity", "uniqueness", "consistency", "accuracy", "timeliness")
    }
    context = {"report": report, "s": report["summary"], "charts": _charts(report["summary"], names), "error": None}
    return render(request, "report.html", context, session=session)


@router.get("/quality/reports/{report_id}/report.pdf")
async def report_pdf(
    request: Request, report_id: int = Path(ge=1, le=2**31 - 1), session: Session = Depends(signed_in)
) -> Response:
    """The PDF through the person's token (a link the browser can follow)."""
    answer = await Backend(request, session.token).get(f"/quality/reports/{report_id}/report.pdf")
    if answer.status_code != 200:
        return Response(answer.content, status_code=answer.status_code, media_type="application/json")
    headers = {"Content-Disposition": f'attachment; filename="quality-report-{report_id}.pdf"'}
    return Response(answer.content, media_type="application/pdf", headers=headers)


@router.get("/quality/scorecards")
async def scorecards_page(request: Request, session: Session = Depends(signed_in)) -> Response:
    by = request.query_params.get("by")
    by = by if by in BY else "dataset"
    answer = await Backend(request, session.token).get("/quality/scorecards", params={"by": by, "days": 30})
    context: dict[str, Any] = {"by": by, "bys": BY, "items": [], "error": None, "chart": "{}"}
    if answer.status_code == 200:
        items = answer.json()["items"]
        context["items"] = items
        context["unavailable"] = answer.json().get("unavailable")
        context["dimensions"] = sorted({d for i in items for d in i["dimensions"]})
        days = sorted({t["day"] for i in items for t in i["trend"]})
        series = {}
        for i in items[:8]:  # the worst eight: a readable chart
            by_day = {t["day"]: t["score"] for t in i["trend"]}
            series[i["key"]] = [by_day.get(d) for d in days]
        context["chart"] = json.dumps({"categories": days, "series": series}, ensure_ascii=False)
    else:
        context["error"] = refusal_of(answer, language_of(request))
    return render(
        request,
        "scorecards.html",
        context,
        status_code=200 if not context["error"] else answer.status_code,
        session=session,
    )
