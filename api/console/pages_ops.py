"""Overview (health, throughput and lag charts, messages) and the message centre (jobs, messages)."""

from __future__ import annotations

import time

from fastapi import APIRouter, Depends, Request
from fastapi.responses import JSONResponse, Response
from prometheus_client.parser import text_string_to_metric_families

from api.console.backend import Backend, detail_of, segment
from api.console.session import ConsoleRoute, Session, render, signed_in

router = APIRouter(route_class=ConsoleRoute)


async def _json_or_refusal(api: Backend, path: str, **kwargs) -> tuple[object | None, str | None]:
    """The API's answer, or None and its refusal (a section the person may not see says so)."""
    answer = await api.get(path, **kwargs)
    if answer.status_code == 200:
        return answer.json(), None
    return None, f"{answer.status_code}: {detail_of(answer)}"


@router.get("/")
async def overview(request: Request, session: Session = Depends(signed_in)) -> Response:
    api = Backend(request, session.token)
    messages, messages_error = await _json_or_refusal(api, "/messages", params={"limit": 10})
    rules, rules_error = await _json_or_refusal(api, "/alerts/rules")
    return render(
        request,
        "overview.html",
        {
            "messages": messages or [],
            "messages_error": messages_error,
            "rules": rules or [],
            "rules_error": rules_error,
            # the charts poll /metrics (ops:view): without it they are not drawn, nor polled into refusals
            "can_see_metrics": session.can("ops:view"),
        },
        session=session,
    )


@router.get("/overview/health")
async def overview_health(request: Request, session: Session = Depends(signed_in)) -> Response:
    """The health panel alone: the overview loads it after the page (a component that does not
    answer costs the check its timeout, not the page) and refreshes it every 15 s."""
    health, health_error = await _json_or_refusal(Backend(request, session.token), "/health")
    return render(request, "_health.html", {"health": health, "health_error": health_error}, session=session)


def metric_samples(text: str) -> dict:
    """Stage counters and consumer lag out of the API's Prometheus text."""
    stages: dict[str, float] = {}
    lag: dict[str, float] = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            labels = sample.labels
            if sample.name in ("huiliu_stage_events_total", "huiliu_stage_events"):
                key = f"{labels.get('pipeline')}/{labels.get('stage')}/{labels.get('metric')}"
                stages[key] = stages.get(key, 0.0) + sample.value
            elif sample.name == "huiliu_consumer_lag":
                group = labels.get("group", "?")
                lag[group] = lag.get(group, 0.0) + sample.value
    return {"stages": stages, "lag": lag}


@router.get("/overview/metrics.json")
async def overview_metrics(request: Request, session: Session = Depends(signed_in)) -> Response:
    """Counters now; the page's script turns successive samples into events/s."""
    answer = await Backend(request, session.token).get("/metrics")
    if answer.status_code != 200:
        return JSONResponse({"error": detail_of(answer)}, status_code=answer.status_code)
    return JSONResponse({"ts": time.time(), **metric_samples(answer.text)})


async def _jobs_context(request: Request, session: Session) -> dict:
    api = Backend(request, session.token)
    jobs, jobs_error = await _json_or_refusal(api, "/jobs", params={"limit": 50})
    return {"jobs": jobs or [], "jobs_error": jobs_error}


@router.get("/jobs")
async def jobs_page(request: Request, session: Session = Depends(signed_in)) -> Response:
    context = await _jobs_context(request, session)
    messages, messages_error = await _json_or_refusal(
        Backend(request, session.token), "/messages", params={"limit": 50}
    )
    return render(
        request,
        "jobs.html",
        {**context, "messages": messages or [], "messages_error": messages_error},
        session=session,
    )


@router.get("/jobs/table")
async def jobs_table(request: Request, session: Session = Depends(signed_in)) -> Response:
    """The jobs table alone: the page polls it (htmx) while jobs run."""
    return render(request, "_jobs_table.html", await _jobs_context(request, session), session=session)


@router.post("/jobs/{job_id}/cancel")
async def cancel_job(request: Request, job_id: str, session: Session = Depends(signed_in)) -> Response:
    api = Backend(request, session.token)
    answer = await api.post(f"/jobs/{segment(job_id)}/cancel")
    context = await _jobs_context(request, session)
    if answer.status_code >= 400:
        context["action_error"] = detail_of(answer)
    return render(request, "_jobs_table.html", context, session=session)
