"""Sensitive-data detection in the console (issue 17): a dataset's scan (`POST /detection/scan`)
shown as proposals with their evidence (kind, match ratio, masked examples, proposed level and mask,
the current level), and the person's choice of levels confirmed into the catalogue
(`POST /detection/confirm`); the API checks metadata:manage and the tenant. URNs travel as the
`urn` query or form parameter, as on the catalogue pages."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends, Request
from fastapi.responses import RedirectResponse, Response

from api.console.backend import Backend, detail_of, segment
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
