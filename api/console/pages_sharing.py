"""Sensitive-data detection and requests for access in the console (issue 17). Detection: a dataset's scan (`POST /detection/scan`)
shown as proposals with their evidence (kind, match ratio, masked examples, proposed level and mask,
the current level), and the person's choice of levels confirmed into the catalogue
(`POST /detection/confirm`); the API checks metadata:manage and the tenant. URNs travel as the
`urn` query or form parameter, as on the catalogue pages.

Requests for access (申请访问): a dataset's page offers the form (purpose, the fields wanted, a
period, the consuming application), posted to `POST /console/catalog/access-requests` ->
`POST /access-requests`; `/console/catalog/access-requests` lists what waits for the person as a
dataset's owner (its owner in the catalogue, a user or a group), what they asked and what they
decided (`GET /access-requests`); the owner approves the fields asked or fewer, or rejects, with a
comment (`POST /console/catalog/access-requests/{id}/decision` -> the API's decision; an approval's
app key is shown once, on the page answering it). The API checks services:apply, the owner and the
tenant; its refusal is shown where the person acted."""

from __future__ import annotations

import re
from typing import Any

from fastapi import APIRouter, Depends, Request
from fastapi.responses import RedirectResponse, Response

from api.console.backend import Backend, detail_of, segment
from api.console.flash import redirect_with, take
from api.console.pages_catalog import dataset_view
from api.console.session import PATH, ConsoleRoute, Session, render, signed_in

router = APIRouter(route_class=ConsoleRoute)
CLASSIFICATIONS = ("public", "internal", "sensitive", "secret")


def _context(urn: str, session: Session, **more) -> dict[str, Any]:
    return {
        "urn": urn,
        "can_edit": session.can("metadata:manage"),
        "classifications": CLASSIFICATIONS,
        "scan": None,
        "error": None,
        **more,
    }


@router.get("/catalog/detection")
async def detection_page(request: Request, session: Session = Depends(signed_in)) -> Response:
    urn = (request.query_params.get("urn") or "")[:1000]
    return render(request, "detection.html", _context(urn, session), session=session)


@router.post("/catalog/detection")
async def detection_scan(request: Request, session: Session = Depends(signed_in)) -> Response:
    """Scan the dataset's samples (the API's proposals, never a clear value)."""
    form = await request.form()
    urn = str(form.get("urn", ""))[:1000]
    answer = await Backend(request, session.token).call("POST", "/detection/scan", json={"dataset": urn})
    if answer.status_code != 200:
        context = _context(urn, session, error=detail_of(answer))
        return render(request, "detection.html", context, status_code=answer.status_code, session=session)
    return render(request, "detection.html", _context(urn, session, scan=answer.json()), session=session)


@router.post("/catalog/detection/confirm")
async def detection_confirm(request: Request, session: Session = Depends(signed_in)) -> Response:
    """The ticked findings with the chosen levels into the catalogue; back to the dataset's page."""
    form = await request.form()
    urn = str(form.get("urn", ""))[:1000]
    fields = {}
    for name in form.getlist("field"):
        level = str(form.get(f"level:{name}", ""))
        kind = str(form.get(f"kind:{name}", "")) or None
        fields[str(name)] = {"classification": level, **({"kind": kind} if kind else {})}
    if not fields:
        context = _context(urn, session, error="—")
        return render(request, "detection.html", context, status_code=422, session=session)
    answer = await Backend(request, session.token).call(
        "POST", "/detection/confirm", json={"dataset": urn, "fields": fields}
    )
    if answer.status_code != 200:
        context = _context(urn, session, error=detail_of(answer))
        return render(request, "detection.html", context, status_code=answer.status_code, session=session)
    return RedirectResponse(f"{PATH}/catalog/dataset?urn={segment(urn)}&saved=fields#fields-h", status_code=303)


ACCESS_PAGE = "/catalog/access-requests"
APPLICATION = re.compile(r"[a-z][a-z0-9_]{1,62}")  # streams.dataservices.model.NAME


def _access_form(form) -> tuple[dict[str, Any], list[str]]:
    """The request form as the API's body, and the ids of what is missing or malformed."""
    period = str(form.get("period_days", "")).strip()
    body: dict[str, Any] = {
        "dataset": str(form.get("urn", ""))[:1000],
        "application": str(form.get("application", "")).strip()[:63],
        "purpose": str(form.get("purpose", "")).strip()[:2000],
        "fields": [str(f)[:200] for f in form.getlist("field")][:500],
    }
    problems = []
    if not APPLICATION.fullmatch(body["application"]):
        problems.append("access.application_invalid")
    if not body["purpose"]:
        problems.append("access.purpose_missing")
    if not body["fields"]:
        problems.append("access.fields_missing")
    if period:
        if period.isdigit() and 1 <= int(period) <= 3660:
            body["period_days"] = int(period)
        else:
            problems.append("access.period_invalid")
    return body, problems


@router.post(ACCESS_PAGE)
async def access_request(request: Request, session: Session = Depends(signed_in)) -> Response:
    """Ask for access to a dataset (from its page); back to the page, which lists the request."""
    form = await request.form()
    body, problems = _access_form(form)
    kept = {"application": body["application"], "purpose": body["purpose"], "fields": body["fields"]}
    kept["period_days"] = str(form.get("period_days", ""))[:10]
    if problems:
        return await dataset_view(
            request, session, body["dataset"], access_problems=problems, access_form=kept, status=422
        )
    answer = await Backend(request, session.token).post("/access-requests", json=body)
    if answer.status_code != 201:
        error = detail_of(answer)
        return await dataset_view(
            request, session, body["dataset"], access_error=error, access_form=kept, status=answer.status_code
        )
    back = f"{PATH}/catalog/dataset?urn={segment(body['dataset'])}&asked=1#access-h"
    return RedirectResponse(back, status_code=303)


async def access_view(request: Request, session: Session, **extra: Any) -> Response:
    answer = await Backend(request, session.token).get("/access-requests")
    me = session.principal.name
    listed = answer.json() if answer.status_code == 200 else []
    context: dict[str, Any] = {
        "error": None if answer.status_code == 200 else detail_of(answer),
        "waiting": [r for r in listed if r["requester"] != me and r["status"] == "pending"],
        "mine": [r for r in listed if r["requester"] == me],
        "decided": [r for r in listed if r["requester"] != me and r["status"] != "pending"],
        "decision": None,
        "decision_error": None,
    }
    status = extra.pop("status", answer.status_code if answer.status_code != 200 else 200)
    context.update(extra)
    return render(request, "access_requests.html", context, status_code=status, session=session)


@router.get(ACCESS_PAGE)
async def access_page(request: Request, session: Session = Depends(signed_in)) -> Response:
    # the decision just made (its app key or signing secret shown this once), after the redirect
    return await access_view(request, session, decision=take(request, session).get("decision"))


@router.post(ACCESS_PAGE + "/{request_id}/decision")
async def access_decision(request_id: int, request: Request, session: Session = Depends(signed_in)) -> Response:
    """The owner's decision: approve the ticked fields (the asked ones or fewer) or reject; a comment."""
    form = await request.form()
    approve = form.get("decision") == "approve"
    body: dict[str, Any] = {"approve": approve, "comment": str(form.get("comment", "")).strip()[:2000]}
    if approve:
        fields = [str(f)[:200] for f in form.getlist("grant")][:500]
        if not fields:
            refusal = {"id": request_id, "reason": None, "problem": "access.grant_missing"}
            return await access_view(request, session, decision_error=refusal, status=422)
        body["fields"] = fields
    answer = await Backend(request, session.token).post(f"/access-requests/{request_id}/decision", json=body)
    if answer.status_code != 200:
        refusal = {"id": request_id, "reason": detail_of(answer), "problem": None}
        return await access_view(request, session, decision_error=refusal, status=answer.status_code)
    # 303 to the list, which shows the decision once: a reload does not decide again
    decision = answer.json()
    return redirect_with(request, session, PATH + ACCESS_PAGE, decision=decision) or await access_view(
        request, session, decision=decision
    )
