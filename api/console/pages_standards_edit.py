"""Data standards (数据标准): creating and editing data elements and code sets, submitting a draft
for review and retiring a published one.

`GET /console/standards/edit?kind=element|code_set[&code=]`: the form, empty or with the latest
version's attributes (a code set's items one a line, `code, label[, parent]`). `POST` to the same
address saves a draft: `POST /standards/elements|code-sets` for a new one, `PATCH` of the changed
attributes for an existing one (a published item gets a new draft version; the API decides). The
API's problems are shown next to their fields in the page's language; the form keeps what was
typed. `POST /console/standards/{kind}/{code}/submit` (`POST /standards/reviews`, standards:manage)
and `/retire` (`POST .../retire`, standards:review) answer the item's page."""

from __future__ import annotations

from typing import Any
from urllib.parse import quote

from fastapi import APIRouter, Depends, Request
from fastapi.responses import RedirectResponse, Response

from api.console.backend import Backend, refusal_of, segment
from api.console.i18n import catalogue, language_of
from api.console.pages_standards import KINDS, _kind, standard_view
from api.console.session import PATH, ConsoleRoute, Session, render, signed_in
from api.console.standards_form import DATA_TYPES, FIELDS, body_of, changed, field_errors, values_of

router = APIRouter(route_class=ConsoleRoute)


def _item_page(kind: str, code: str, done: str) -> RedirectResponse:
    return RedirectResponse(f"{PATH}/standards/{kind}/{quote(code, safe='')}?done={done}", status_code=303)


async def _form(request: Request, session: Session, kind: str, code: str, **extra: Any) -> Response:
    context: dict[str, Any] = {"kind": kind, "code": code, "fields": FIELDS[kind], "data_types": DATA_TYPES}
    context |= {"values": {}, "errors": {}, "others": [], "error": None, "item": None, "existing": False}
    if code and "values" not in extra:
        answer = await Backend(request, session.token).get(f"{KINDS[kind]}/{segment(code)}")
        if answer.status_code != 200:
            context["error"] = refusal_of(answer, language_of(request))
            return render(request, "standard_edit.html", context, status_code=answer.status_code, session=session)
        context.update(item=answer.json(), values=values_of(kind, answer.json()), existing=True)
    status = extra.pop("status", 200)
    context.update(extra)
    return render(request, "standard_edit.html", context, status_code=status, session=session)


@router.get("/standards/edit")
async def edit_page(request: Request, session: Session = Depends(signed_in)) -> Response:
    params = request.query_params
    return await _form(request, session, _kind(params.get("kind")), (params.get("code") or "").strip()[:100])


@router.post("/standards/edit")
async def edit_save(request: Request, session: Session = Depends(signed_in)) -> Response:
    """Save a draft; back to the item's page, or the form with each problem next to its field."""
    form = await request.form()
    kind, code = _kind(str(form.get("kind") or "")), str(form.get("code") or "").strip()[:100]
    existing = form.get("existing") == "1"
    body = body_of(kind, form)
    api = Backend(request, session.token)
    if existing:
        current = await api.get(f"{KINDS[kind]}/{segment(code)}")
        if current.status_code != 200:
            return await _form(request, session, kind, code)
        body = changed(body, current.json())
        if not body:  # nothing changed: no new version
            return _item_page(kind, code, "saved")
        answer = await api.call("PATCH", f"{KINDS[kind]}/{segment(code)}", json=body)
    else:
        answer = await api.post(KINDS[kind], json={"code": code, **body})
    if answer.status_code in (200, 201):
        return _item_page(kind, answer.json().get("code") or code, "saved")
    lang = language_of(request)
    detail = (
        answer.json().get("detail") if answer.headers.get("content-type", "").startswith("application/json") else None
    )
    problems = detail.get("problems") or [] if isinstance(detail, dict) else []
    errors, others = field_errors(problems, lang, catalogue(lang).gettext("standards.line"))
    values = {k: str(v) for k, v in form.items() if k != "csrf_token"}
    return await _form(
        request,
        session,
        kind,
        code,
        values=values,
        errors=errors,
        others=others,
        existing=existing,
        error=refusal_of(answer, lang) if not errors else None,
        status=answer.status_code,
    )


@router.post("/standards/{kind}/{code}/{action}")
async def item_action(
    kind: str, code: str, action: str, request: Request, session: Session = Depends(signed_in)
) -> Response:
    """submit (a draft, for review) or retire (a published item)."""
    kind = _kind(kind)
    api = Backend(request, session.token)
    if action == "submit":
        title = str((await request.form()).get("title") or "")[:500]
        answer = await api.post("/standards/reviews", json={"title": title, "items": [{"kind": kind, "code": code}]})
    elif action == "retire":
        answer = await api.post(f"{KINDS[kind]}/{segment(code)}/retire")
    else:
        return Response(status_code=404)
    if answer.status_code in (200, 201):
        return _item_page(kind, code, "submitted" if action == "submit" else "retired")
    error = refusal_of(answer, language_of(request))
    return await standard_view(request, session, kind, code, action_error=error, status=answer.status_code)
