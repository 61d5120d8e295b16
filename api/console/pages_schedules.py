"""Schedules in the message centre: the list, each schedule's run history (polled while open) and
a manual run (`POST /schedules/{sid}/run`); all through the API's `schedules:manage` routes."""

from __future__ import annotations

from fastapi import APIRouter, Depends, Request
from fastapi.responses import Response

from api.console.backend import Backend, detail_of, segment
from api.console.session import ConsoleRoute, Session, render, signed_in

router = APIRouter(route_class=ConsoleRoute)


@router.get("/schedules")
async def schedules_page(request: Request, session: Session = Depends(signed_in)) -> Response:
    answer = await Backend(request, session.token).get("/schedules")
    ok = answer.status_code == 200
    context = {"schedules": answer.json() if ok else [], "error": None if ok else detail_of(answer)}
    return render(request, "schedules.html", context, session=session)


async def _runs(request: Request, session: Session, sid: str, action_error: str | None = None) -> Response:
    api = Backend(request, session.token)
    schedule = await api.get(f"/schedules/{segment(sid)}")
    runs = await api.get(f"/schedules/{segment(sid)}/runs", params={"limit": 20})
    context = {
        "schedule": schedule.json() if schedule.status_code == 200 else {"id": sid, "name": sid},
        "runs": runs.json() if runs.status_code == 200 else [],
        "error": None if runs.status_code == 200 else detail_of(runs),
        "action_error": action_error,
    }
    return render(request, "_schedule_runs.html", context, session=session)


@router.get("/schedules/{sid}/runs")
async def schedule_runs(sid: str, request: Request, session: Session = Depends(signed_in)) -> Response:
    """One schedule's run history (the panel polls it)."""
    return await _runs(request, session, sid)


@router.post("/schedules/{sid}/run")
async def run_schedule(sid: str, request: Request, session: Session = Depends(signed_in)) -> Response:
    answer = await Backend(request, session.token).post(f"/schedules/{segment(sid)}/run")
    return await _runs(request, session, sid, detail_of(answer) if answer.status_code >= 400 else None)
