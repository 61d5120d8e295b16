"""More catalogue pages (issue 15 in the console): the asset statistics (`GET /assets/summary`:
totals per system, department and classification level as tables and ECharts bars), harvesting
(each system's last harvest, the triggers — connector start, `metadata.harvest` schedules — and a
"harvest now" through `POST /metadata/harvest`, the job's progress polled as in the message
centre) and lineage reported from outside (`GET /lineage-reports`: each reporting job with its
producer, time and flows).
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends, Request
from fastapi.responses import Response

from api.console.backend import Backend, detail_of, segment
from api.console.i18n import catalogue, language_of
from api.console.pages_pipelines import graph_json
from api.console.session import ConsoleRoute, Session, render, signed_in

router = APIRouter(route_class=ConsoleRoute)
GROUPS = ("system", "department", "classification")
CHART_SERIES = ("datasets", "fields", "consumers")
UNSET = "(none)"  # the API's group of datasets without a department or classification
FINISHED = ("succeeded", "failed", "cancelled")
HARVEST_ACTION = "metadata.harvest"


def group_name(key: str, item: dict, words) -> str:
    """A group's name in the page's language: a system's name, a classification's word, 未设置."""
    value = item.get(key)
    if value == UNSET:
        return words.gettext("assets.unset")
    if key == "system":
        return item.get("name") or str(value).removeprefix("hl:system:")
    if key == "classification":
        found = words.gettext(f"class.{value}")
        return value if found == f"class.{value}" else found
    return str(value)


def assets_charts(summary: dict, words) -> dict[str, str]:
    """One bar chart per grouping: datasets, fields and consumers of each group."""
    charts = {}
    for key in GROUPS:
        items = summary.get(f"by_{key}", [])
        data = {
            "categories": [group_name(key, i, words) for i in items],
            "series": {k: [i[k] for i in items] for k in CHART_SERIES},
        }
        charts[key] = graph_json(data)
    return charts


@router.get("/catalog/assets")
async def assets_page(request: Request, session: Session = Depends(signed_in)) -> Response:
    answer = await Backend(request, session.token).get("/assets/summary")
    words = catalogue(language_of(request))
    context: dict[str, Any] = {"groups": GROUPS, "series": CHART_SERIES}
    if answer.status_code != 200:
        context["error"] = detail_of(answer)
        return render(request, "catalog_assets.html", context, status_code=answer.status_code, session=session)
    summary = answer.json()
    context["summary"] = summary
    context["charts"] = assets_charts(summary, words)
    context["names"] = {key: [group_name(key, i, words) for i in summary.get(f"by_{key}", [])] for key in GROUPS}
    return render(request, "catalog_assets.html", context, session=session)


async def _harvest_context(request: Request, session: Session) -> dict[str, Any]:
    api = Backend(request, session.token)
    systems = await api.get("/metadata/systems")
    context: dict[str, Any] = {
        "systems": systems.json() if systems.status_code == 200 else [],
        "error": None if systems.status_code == 200 else detail_of(systems),
        "on_start": request.app.state.settings.metadata_harvest_on_start,
        "can_harvest": session.can("metadata:manage"),
        "schedules": None,
        "connectors": [],
    }
    # the schedules and connectors are shown to those allowed to read them; others see the systems
    schedules = await api.get("/schedules")
    if schedules.status_code == 200:
        context["schedules"] = [s for s in schedules.json() if s.get("action") == HARVEST_ACTION]
    if context["can_harvest"]:
        connectors = await api.get("/connectors", params={"limit": 100})
        context["connectors"] = connectors.json() if connectors.status_code == 200 else []
    return context


@router.get("/catalog/harvest")
async def harvest_page(request: Request, session: Session = Depends(signed_in)) -> Response:
    context = await _harvest_context(request, session)
    return render(request, "catalog_harvest.html", context, session=session)


def harvest_message(job: dict, words) -> str:
    """The job's line in the page's language (the job's own message is English): its progress
    while it runs, what it found when it is done."""
    result = job.get("result") or {}
    if job["state"] != "succeeded" or "harvested" not in result:
        return words.gettext("harvest.running") if job["state"] in ("queued", "running") else ""
    found = result["harvested"]
    return words.gettext("harvest.summary") % {
        "connectors": len(result.get("connectors") or []),
        "new": sum(o.get("new", 0) for o in found),
        "changed": sum(len(o.get("changed") or []) for o in found),
        "errors": len(result.get("errors") or []),
    }


async def _job(request: Request, session: Session, job_id: str, error: str | None = None) -> Response:
    answer = await Backend(request, session.token).get(f"/jobs/{segment(job_id)}")
    job = answer.json() if answer.status_code == 200 else None
    if job:
        job["message"] = harvest_message(job, catalogue(language_of(request)))
    context = {
        "job_id": job_id,
        "jobs": [job] if job else [],
        "jobs_error": None if job else detail_of(answer),
        "running": bool(job) and job["state"] not in FINISHED,
        "harvest_error": error,
    }
    return render(request, "_harvest_job.html", context, session=session)


@router.post("/catalog/harvest")
async def harvest_now(request: Request, session: Session = Depends(signed_in)) -> Response:
    """Start a harvest (all the person's connectors, or the one chosen); answers the job's panel."""
    form = await request.form()
    connector = str(form.get("connector", "")).strip()
    body = {"connectors": [connector]} if connector else {}
    answer = await Backend(request, session.token).post("/metadata/harvest", json=body)
    if answer.status_code != 202:
        context = {"job_id": "", "jobs": [], "running": False, "harvest_error": detail_of(answer)}
        return render(request, "_harvest_job.html", context, session=session)
    return await _job(request, session, answer.json()["job_id"])


@router.get("/catalog/harvest/job")
async def harvest_job(request: Request, session: Session = Depends(signed_in)) -> Response:
    """The harvest job's row (polled every 2 s while it runs)."""
    return await _job(request, session, request.query_params.get("id", ""))


@router.get("/catalog/reported")
async def reported_page(request: Request, session: Session = Depends(signed_in)) -> Response:
    answer = await Backend(request, session.token).get("/lineage-reports")
    ok = answer.status_code == 200
    context = {"reports": answer.json() if ok else [], "error": None if ok else detail_of(answer)}
    return render(request, "catalog_reported.html", context, status_code=answer.status_code, session=session)
