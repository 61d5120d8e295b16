"""Quality pages (数据质量, issue 16 in the console): the tickets board (columns by state, filtered by
pipeline, rule, dimension, assignee or "mine", overdue marked), a ticket's page (dataset, rule, counts,
SLA, samples masked as the API masks them, history and comments; the comment form and the buttons of
the moves its state allows shown only with `quality:manage`, the API refusing them anyway), and the
quarantine browser (records of a pipeline by rule and time, each with its violations and original
row). With `quality:manage` chosen records open a ticket, are corrected and replayed (field ->
corrected value rows, the fields offered from the shown rows, and a reason: `POST
/quality/quarantine/replay`) or accepted as a waiver (`POST /quality/quarantine/accept`), and a rule's
whole quarantine is replayed as a message-centre job (`POST /quality/quarantine/replay-jobs`), whose
row is polled on the page. Everything goes through the JSON API: `/quality/tickets...` and
`/quality/quarantine...`; its refusals are shown on the page in its language."""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any
from urllib.parse import urlencode

from fastapi import APIRouter, Depends, Request
from fastapi.responses import RedirectResponse, Response

from api.console.backend import Backend, refusal_of, segment
from api.console.flash import redirect_with, take
from api.console.i18n import catalogue, language_of
from api.console.pages_catalog_profile import in_language
from api.console.session import PATH, ConsoleRoute, Session, render, signed_in

router = APIRouter(route_class=ConsoleRoute)
STATES = ("open", "assigned", "in_progress", "resolved", "verified", "closed", "reopened")
DIMENSIONS = ("completeness", "validity", "uniqueness", "consistency", "accuracy", "timeliness")
RESOLUTIONS = ("fixed_at_source", "fixed_in_platform_replayed", "waived")
FILTERS = ("pipeline", "rule", "dimension", "assignee")
PAGE = 200
FIX_ROWS = 3  # field -> corrected value rows offered on the forms
FINISHED = ("succeeded", "failed", "cancelled", "interrupted")


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
    notice = take(request, session).get("notice")  # what a replay or an accept just did (flash.py)
    return await _quarantine(request, session, request.query_params, notice=notice)


def field_types(items: list[dict]) -> dict[str, str]:
    """The shown rows' fields in order, each with the JSON type of its first non-null value
    ("str" when none has one): how a corrected value typed in a form is read (see corrections)."""
    types: dict[str, str] = {}
    for item in items:
        for name, value in ((item.get("event") or {}).get("after") or {}).items():
            if types.get(name, "str") == "str" and value is not None and value != "****":
                types[name] = {bool: "bool", int: "int", float: "float"}.get(type(value), "str")
            types.setdefault(name, "str")
    return types


def corrections(form, types: dict[str, str]) -> tuple[dict[str, Any], tuple[str, dict] | None]:
    """The form's field -> corrected value rows as the API's `set`, each value read as the field's
    type in the shown rows (an empty value is null); or the first row that cannot be read, as a
    message id and its values. A field not among the shown ones goes as text: the API judges it."""
    out: dict[str, Any] = {}
    for name, raw in zip(form.getlist("fix_field")[:100], form.getlist("fix_value")[:100]):
        name, text = str(name).strip()[:200], str(raw).strip()[:2000]
        if not name:
            continue
        kind = types.get(name, "str")
        try:
            if text == "":
                out[name] = None
            elif kind == "int":
                out[name] = int(text)
            elif kind == "float":
                out[name] = float(text)
            elif kind == "bool":
                if text.lower() not in ("true", "false"):
                    raise ValueError
                out[name] = text.lower() == "true"
            else:
                out[name] = text
        except ValueError:
            return {}, (f"quality.fix_not_{kind}", {"field": name})
    return out, None


def _say(lang: str, message: tuple[str, dict]) -> str:
    key, values = message
    return catalogue(lang).gettext(key) % values


def _checked(form) -> tuple[dict[str, Any], str, tuple[str, dict] | None]:
    """(the corrections, the reason, the first problem of the form) of a replay form."""
    fix, problem = corrections(form, _types_of(form))
    reason = str(form.get("reason") or "").strip()[:2000]
    if problem is None and not reason:
        problem = ("quality.reason_missing", {})
    return fix, reason, problem


def _types_of(form) -> dict[str, str]:
    """The field types the page sent along (hidden, from field_types); anything else is ignored."""
    try:
        given = json.loads(str(form.get("field_types") or "{}"))
    except ValueError:
        return {}
    if not isinstance(given, dict):
        return {}
    return {str(k)[:200]: v for k, v in list(given.items())[:500] if v in ("str", "int", "float", "bool")}


def _positions(form) -> list[dict[str, int]]:
    records = []
    for ref in form.getlist("record")[:10_000]:
        part, _, off = str(ref).partition(":")
        if part.isdigit() and off.isdigit():
            records.append({"partition": int(part), "offset": int(off)})
    return records


async def _quarantine(
    request: Request, session: Session, params, error: str | None = None, notice: dict | None = None
) -> Response:
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
        "notice": notice,
        "fix_rows": FIX_ROWS,
        "fields": {},
        "job_id": "",
        "jobs": [],
        "running": False,
        "replay_error": None,
        "jobs_error": None,
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
            context["fields"] = field_types(context["page"]["items"])
        else:
            context["error"] = context["error"] or refusal_of(answer, language_of(request))
    return render(request, "quality_quarantine.html", context, session=session)


@router.post("/quality/tickets")
async def open_ticket(request: Request, session: Session = Depends(signed_in)) -> Response:
    """Open a ticket from the records chosen in the quarantine browser (`POST /quality/tickets`)."""
    form = await request.form()
    body: dict[str, Any] = {"pipeline": str(form.get("pipeline") or "")[:200], "records": _positions(form)[:100]}
    if str(form.get("rule") or "").strip():
        body["rule"] = str(form.get("rule")).strip()[:300]
    answer = await Backend(request, session.token).post("/quality/tickets", json=body)
    if answer.status_code == 201:
        return RedirectResponse(f"{PATH}/quality/tickets/{answer.json()['id']}", status_code=303)
    back = {"pipeline": body["pipeline"], "rule": str(form.get("filter_rule") or "")}
    return await _quarantine(request, session, back, refusal_of(answer, language_of(request)))


def _back(form) -> dict[str, str]:
    """The quarantine page's filter the form came from."""
    return {"pipeline": str(form.get("pipeline") or "")[:200], "rule": str(form.get("filter_rule") or "")[:300]}


@router.post("/quality/quarantine/replay")
async def replay_records(request: Request, session: Session = Depends(signed_in)) -> Response:
    """Correct the chosen records and replay them (`POST /quality/quarantine/replay`): the page again
    with how many went back, or the API's refusal (an unknown field, a value its type cannot hold)."""
    form = await request.form()
    lang = language_of(request)
    fix, reason, problem = _checked(form)
    records = _positions(form)
    if not records:
        problem = ("quality.records_missing", {})
    if problem:
        return await _quarantine(request, session, _back(form), _say(lang, problem))
    body = {"pipeline": _back(form)["pipeline"], "records": records, "set": fix, "reason": reason}
    return await _post_and_show(request, session, form, "/quality/quarantine/replay", body, "replayed")


@router.post("/quality/quarantine/accept")
async def accept_records(request: Request, session: Session = Depends(signed_in)) -> Response:
    """Accept the chosen records as they are, a waiver with a reason (`POST /quality/quarantine/accept`)."""
    form = await request.form()
    lang = language_of(request)
    reason, records = str(form.get("reason") or "").strip()[:2000], _positions(form)
    problem = None if records else ("quality.records_missing", {})
    problem = problem or (None if reason else ("quality.reason_missing", {}))
    if problem:
        return await _quarantine(request, session, _back(form), _say(lang, problem))
    body = {"pipeline": _back(form)["pipeline"], "records": records, "reason": reason}
    return await _post_and_show(request, session, form, "/quality/quarantine/accept", body, "accepted")


async def _post_and_show(request: Request, session: Session, form, path: str, body: dict, done: str) -> Response:
    """Post the chosen records' action; then 303 to the quarantine page (its filter), which says how
    many it took (`done`: "replayed" or "accepted", the answer's count and the notice's name), so a
    reload does not post again; or the page with the API's refusal."""
    answer = await Backend(request, session.token).post(path, json=body)
    if answer.status_code != 200:
        return await _quarantine(request, session, _back(form), refusal_of(answer, language_of(request)))
    result = answer.json()
    notice = {"id": f"quality.{done}_n", "n": result[done], "topic": result["topic"]}
    back = f"{PATH}/quality/quarantine?{urlencode({k: v for k, v in _back(form).items() if v})}"
    return redirect_with(request, session, back, notice=notice) or await _quarantine(
        request, session, _back(form), notice=notice
    )


async def _replay_job_panel(request: Request, session: Session, job_id: str, error: str | None = None) -> Response:
    context: dict[str, Any] = {"job_id": job_id, "jobs": [], "jobs_error": None, "running": False}
    context["replay_error"] = error
    if job_id and not error:
        answer = await Backend(request, session.token).get(f"/jobs/{segment(job_id)}")
        if answer.status_code == 200:
            job = answer.json()
            job["message"], job["error"] = in_language(job.get("message")), in_language(job.get("error"))
            context |= {"jobs": [job], "running": job["state"] not in FINISHED}
        else:
            context["jobs_error"] = refusal_of(answer, language_of(request))
    return render(request, "_replay_job.html", context, session=session)


@router.post("/quality/quarantine/replay-jobs")
async def replay_rule_job(request: Request, session: Session = Depends(signed_in)) -> Response:
    """Replay a rule's whole quarantine as a job (`POST /quality/quarantine/replay-jobs`): answers the
    job's row, which the page polls, or the refusal."""
    form = await request.form()
    lang = language_of(request)
    fix, reason, problem = _checked(form)
    rule = str(form.get("rule") or "").strip()[:300]
    if problem is None and not rule:
        problem = ("quality.rule_missing", {})
    if problem:
        return await _replay_job_panel(request, session, "", _say(lang, problem))
    body = {"pipeline": _back(form)["pipeline"], "rule": rule, "set": fix, "reason": reason}
    answer = await Backend(request, session.token).post("/quality/quarantine/replay-jobs", json=body)
    if answer.status_code != 202:
        return await _replay_job_panel(request, session, "", refusal_of(answer, lang))
    return await _replay_job_panel(request, session, str(answer.json()["job_id"]))


@router.get("/quality/quarantine/replay-jobs/job")
async def replay_job_row(request: Request, session: Session = Depends(signed_in)) -> Response:
    """The replay job's row (polled every 2 s while it runs)."""
    return await _replay_job_panel(request, session, (request.query_params.get("id") or "")[:100])
