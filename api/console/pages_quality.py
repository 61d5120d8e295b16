"""Quality pages (数据质量, issue 16 in the console): the tickets board (columns by state, filtered by
pipeline, rule, dimension, assignee or "mine", overdue marked), a ticket's page (dataset, rule, counts,
SLA, samples masked as the API masks them, history and comments; the comment form and the buttons of
the moves its state allows shown only with `quality:manage`, the API refusing them anyway), and the
quarantine browser (records of a pipeline by rule and time, each with its violations and original
row; with `quality:manage` chosen records open a ticket). Everything goes through the JSON API:
`/quality/tickets...` and `/quality/quarantine`."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from fastapi import APIRouter, Depends, Request
from fastapi.responses import RedirectResponse, Response

from api.console.backend import Backend, refusal_of
from api.console.i18n import language_of
from api.console.session import PATH, ConsoleRoute, Session, render, signed_in

router = APIRouter(route_class=ConsoleRoute)
STATES = ("open", "assigned", "in_progress", "resolved", "verified", "closed", "reopened")
DIMENSIONS = ("completeness", "validity", "uniqueness", "consistency", "accuracy", "timeliness")
RESOLUTIONS = ("fixed_at_source", "fixed_in_platform_replayed", "waived")
FILTERS = ("pipeline", "rule", "dimension", "assignee")
PAGE = 200


@router.get("/quality/tickets")
async def tickets_board(request: Request, session: Session = Depends(signed_in)) -> Response:
    params = request.query_params
    chosen = {k: params[k].strip()[:200] for k in FILTERS if (params.get(k) or "").strip()}
    if chosen.get("dimension") not in (None, *DIMENSIONS):
        chosen.pop("dimension")
    mine = params.get("mine") == "1"
    query: dict[str, Any] = {"limit": PAGE, **chosen, **({"mine": "true"} if mine else {})}
    answer = await Backend(request, session.token).get("/quality/tickets", params=query)
    context: dict[str, Any] = {
        "chosen": chosen,
        "mine": mine,
        "states": STATES,
        "dimensions": DIMENSIONS,
        "columns": {s: [] for s in STATES},
        "total": 0,
        "error": None,
    }
    if answer.status_code == 200:
        for t in answer.json()["items"]:
            context["columns"][t["state"]].append(t)
        context["total"] = answer.json()["total"]
    else:
        context["error"] = refusal_of(answer, language_of(request))
    return render(request, "quality_tickets.html", context, session=session)


async def _ticket_page(request: Request, session: Session, ticket_id: int, error: str | None = None) -> Response:
    answer = await Backend(request, session.token).get(f"/quality/tickets/{ticket_id}")
    context: dict[str, Any] = {"ticket_id": ticket_id, "error": error, "resolutions": RESOLUTIONS}
    if answer.status_code != 200:
        context["error"] = refusal_of(answer, language_of(request))
        return render(request, "quality_ticket.html", context, status_code=answer.status_code, session=session)
    context.update(t=answer.json(), can_manage=session.can("quality:manage"))
    return render(request, "quality_ticket.html", context, session=session)


@router.get("/quality/tickets/{ticket_id}")
async def ticket_page(ticket_id: int, request: Request, session: Session = Depends(signed_in)) -> Response:
    return await _ticket_page(request, session, ticket_id)


@router.post("/quality/tickets/{ticket_id}/transition")
async def ticket_transition(ticket_id: int, request: Request, session: Session = Depends(signed_in)) -> Response:
    """One move (`POST /quality/tickets/{id}/transitions`): back to the ticket, or its page with the refusal."""
    form = await request.form()
    body = {"action": str(form.get("action") or "")[:20]}
    for key in ("assignee", "resolution", "reason"):
        if str(form.get(key) or "").strip():
            body[key] = str(form.get(key)).strip()[:2000]
    answer = await Backend(request, session.token).post(f"/quality/tickets/{ticket_id}/transitions", json=body)
    if answer.status_code == 200:
        return RedirectResponse(f"{PATH}/quality/tickets/{ticket_id}", status_code=303)
    return await _ticket_page(request, session, ticket_id, refusal_of(answer, language_of(request)))


@router.post("/quality/tickets/{ticket_id}/comment")
async def ticket_comment(ticket_id: int, request: Request, session: Session = Depends(signed_in)) -> Response:
    form = await request.form()
    body = {"text": str(form.get("text") or "")[:2000]}
    answer = await Backend(request, session.token).post(f"/quality/tickets/{ticket_id}/comments", json=body)
    if answer.status_code == 201:
        return RedirectResponse(f"{PATH}/quality/tickets/{ticket_id}#history", status_code=303)
    return await _ticket_page(request, session, ticket_id, refusal_of(answer, language_of(request)))


def _when(raw: str | None) -> str | None:
    """A datetime-local field (the page's zone is the person's; sent as given, UTC when unmarked)."""
    if not raw:
        return None
    try:
        return datetime.fromisoformat(raw.strip()).isoformat()
    except ValueError:
        return None


@router.get("/quality/quarantine")
async def quarantine_page(request: Request, session: Session = Depends(signed_in)) -> Response:
    return await _quarantine(request, session, request.query_params)


async def _quarantine(request: Request, session: Session, params, error: str | None = None) -> Response:
    pipeline = (params.get("pipeline") or "").strip()[:200]
    rule = (params.get("rule") or "").strip()[:300]
    since, until = _when(params.get("since")), _when(params.get("until"))
    offset = int(params["offset"]) if (params.get("offset") or "").isdigit() else 0
    context: dict[str, Any] = {
        "pipeline": pipeline,
        "rule": rule,
        "since": params.get("since") or "",
        "until": params.get("until") or "",
        "page": None,
        "error": error,
        "offset": offset,
        "can_manage": session.can("quality:manage"),
    }
    api = Backend(request, session.token)
    pipelines = await api.get("/pipelines", params={"limit": 500})
    context["pipelines"] = [p["name"] for p in pipelines.json()] if pipelines.status_code == 200 else []
    if pipeline:
        query: dict[str, Any] = {"pipeline": pipeline, "limit": 50, "offset": min(offset, 100_000)}
        for key, value in (("rule", rule), ("since", since), ("until", until)):
            if value:
                query[key] = value
        answer = await api.get("/quality/quarantine", params=query)
        if answer.status_code == 200:
            context["page"] = answer.json()
        else:
            context["error"] = context["error"] or refusal_of(answer, language_of(request))
    return render(request, "quality_quarantine.html", context, session=session)


@router.post("/quality/tickets")
async def open_ticket(request: Request, session: Session = Depends(signed_in)) -> Response:
    """Open a ticket from the records chosen in the quarantine browser (`POST /quality/tickets`)."""
    form = await request.form()
    records = []
    for ref in form.getlist("record")[:100]:
        part, _, off = str(ref).partition(":")
        if part.isdigit() and off.isdigit():
            records.append({"partition": int(part), "offset": int(off)})
    body: dict[str, Any] = {"pipeline": str(form.get("pipeline") or "")[:200], "records": records}
    if str(form.get("rule") or "").strip():
        body["rule"] = str(form.get("rule")).strip()[:300]
    answer = await Backend(request, session.token).post("/quality/tickets", json=body)
    if answer.status_code == 201:
        return RedirectResponse(f"{PATH}/quality/tickets/{answer.json()['id']}", status_code=303)
    back = {"pipeline": body["pipeline"], "rule": str(form.get("filter_rule") or "")}
    return await _quarantine(request, session, back, refusal_of(answer, language_of(request)))
