"""Data standards (数据标准): data elements and code sets (lists filtered by status and text, a
page per item with its attributes, code-set items, versions and the diff of two), the review queue
(approve or reject, shown only with `standards:review`; the API refuses the author, and the page
shows why), and the Excel import of data elements with the row-by-row error report of
`POST /standards/import`. Refusals are shown in the page's language where the API gives both."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends, Request
from fastapi.responses import Response

from api.console.backend import Backend, refusal_of, segment
from api.console.flash import redirect_with, take
from api.console.i18n import language_of
from api.console.session import PATH, ConsoleRoute, Session, render, signed_in
from api.console.standards_form import ELEMENT_FIELDS

router = APIRouter(route_class=ConsoleRoute)
KINDS = {"element": "/standards/elements", "code_set": "/standards/code-sets"}
STATUSES = ("draft", "in_review", "published", "superseded", "retired")
PAGE = 100
ELEMENT_ATTRS = ELEMENT_FIELDS  # the attributes shown, in the form's order
CODE_SET_ATTRS = ("name", "description", "source")
DONE = ("saved", "submitted", "retired")  # the notices of the item's page after an action
XLSX = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"


def _kind(raw: str | None) -> str:
    return raw if raw in KINDS else "element"


@router.get("/standards")
async def standards_page(request: Request, session: Session = Depends(signed_in)) -> Response:
    params = request.query_params
    kind = _kind(params.get("kind"))
    q = (params.get("q") or "").strip()[:200]
    status = params.get("status") if params.get("status") in STATUSES else ""
    query: dict[str, Any] = {"limit": PAGE, **({"q": q} if q else {}), **({"status": status} if status else {})}
    answer = await Backend(request, session.token).get(KINDS[kind], params=query)
    context: dict[str, Any] = {"kind": kind, "q": q, "status": status, "statuses": STATUSES, "items": [], "total": 0}
    context["can_manage"] = session.can("standards:manage")
    if answer.status_code == 200:
        context.update(items=answer.json()["items"], total=answer.json()["total"], error=None)
    else:
        context["error"] = refusal_of(answer, language_of(request))
    return render(request, "standards.html", context, session=session)


@router.get("/standards/{kind}/{code}")
async def standard_page(kind: str, code: str, request: Request, session: Session = Depends(signed_in)) -> Response:
    done = request.query_params.get("done")
    return await standard_view(request, session, kind, code, done=done if done in DONE else None)


async def standard_view(request: Request, session: Session, kind: str, code: str, **extra: Any) -> Response:
    """The item's page; `extra`: `done` (what was just done) or `action_error` (the API's refusal
    of a submit or retire, shown above the attributes)."""
    kind = _kind(kind)
    api = Backend(request, session.token)
    path = f"{KINDS[kind]}/{segment(code)}"
    answer = await api.get(path)
    context: dict[str, Any] = {"kind": kind, "code": code}
    if answer.status_code != 200:
        context["error"] = refusal_of(answer, language_of(request))
        return render(request, "standard.html", context, status_code=answer.status_code, session=session)
    versions = await api.get(f"{path}/versions")
    context.update(
        item=answer.json(),
        attrs=ELEMENT_ATTRS if kind == "element" else CODE_SET_ATTRS,
        versions=versions.json() if versions.status_code == 200 else [],
        error=None,
        can_manage=session.can("standards:manage"),
        can_review=session.can("standards:review"),
        done=None,
        action_error=None,
    )
    status = extra.pop("status", 200)
    context.update(extra)
    return render(request, "standard.html", context, status_code=status, session=session)


@router.get("/standards/{kind}/{code}/diff")
async def standard_diff(kind: str, code: str, request: Request, session: Session = Depends(signed_in)) -> Response:
    """The difference of two versions (an htmx fragment)."""
    kind = _kind(kind)
    query = {"from": request.query_params.get("from", ""), "to": request.query_params.get("to", "")}
    answer = await Backend(request, session.token).get(f"{KINDS[kind]}/{segment(code)}/diff", params=query)
    ok = answer.status_code == 200
    context = {"d": answer.json() if ok else None, "error": None if ok else refusal_of(answer, language_of(request))}
    return render(request, "_standard_diff.html", context, session=session)


@router.get("/standards/reviews")
async def reviews_page(request: Request, session: Session = Depends(signed_in)) -> Response:
    status = request.query_params.get("status")
    status = status if status in ("open", "approved", "rejected") else "open"
    answer = await Backend(request, session.token).get("/standards/reviews", params={"status": status})
    context: dict[str, Any] = {"status": status, "can_review": session.can("standards:review"), "reviews": []}
    if answer.status_code == 200:
        context.update(reviews=answer.json(), error=None)
    else:
        context["error"] = refusal_of(answer, language_of(request))
    return render(request, "standards_reviews.html", context, session=session)


@router.post("/standards/reviews/{rid}/decision")
async def decide(rid: int, request: Request, session: Session = Depends(signed_in)) -> Response:
    """Approve or reject (the API checks standards:review and refuses the author); answers the row."""
    form = await request.form()
    body = {"approve": form.get("approve") == "1", "comment": str(form.get("comment") or "")[:4000]}
    api = Backend(request, session.token)
    answer = await api.post(f"/standards/reviews/{rid}/decision", json=body)
    error = None if answer.status_code == 200 else refusal_of(answer, language_of(request))
    current = answer if answer.status_code == 200 else await api.get(f"/standards/reviews/{rid}")
    if current.status_code != 200:
        return render(
            request, "_message.html", {"error": error or refusal_of(current, language_of(request))}, session=session
        )
    context = {"r": current.json(), "row_error": error, "can_review": session.can("standards:review")}
    return render(request, "_review_row.html", context, session=session)


@router.get("/standards/import")
async def import_page(request: Request, session: Session = Depends(signed_in)) -> Response:
    result = take(request, session).get("result")  # an import just made, after its redirect (flash.py)
    return render(request, "standards_import.html", {"result": result, "report": None, "error": None}, session=session)


@router.post("/standards/import")
async def import_workbook(request: Request, session: Session = Depends(signed_in)) -> Response:
    """Send the uploaded workbook to `POST /standards/import`: 303 to the import page saying how many
    drafts went into which review (a reload imports nothing), or the row-by-row report of what is
    wrong (nothing imported)."""
    form = await request.form()
    upload = form.get("workbook")
    data = await upload.read() if upload is not None and hasattr(upload, "read") else b""
    title = str(form.get("title") or "")[:500]
    answer = await Backend(request, session.token).post(
        "/standards/import", params={"title": title} if title else {}, content=data, headers={"Content-Type": XLSX}
    )
    context: dict[str, Any] = {"result": None, "report": None, "error": None}
    if answer.status_code == 201:
        done = answer.json()
        result = {"rows": done.get("rows"), "review": {"id": done["review"]["id"]} if done.get("review") else None}
        redirect = redirect_with(request, session, f"{PATH}/standards/import", result=result)
        if redirect is not None:
            return redirect
        context["result"] = result
    else:
        detail = (
            answer.json().get("detail")
            if answer.headers.get("content-type", "").startswith("application/json")
            else None
        )
        context["report"] = detail.get("errors") if isinstance(detail, dict) else None
        context["error"] = refusal_of(answer, language_of(request))
    status = 200 if answer.status_code == 201 else answer.status_code
    return render(request, "standards_import.html", context, status_code=status, session=session)


@router.get("/standards/export")
async def export_workbook(request: Request, session: Session = Depends(signed_in)) -> Response:
    """The data elements as the API's Excel workbook (the import's template)."""
    answer = await Backend(request, session.token).get("/standards/export")
    if answer.status_code != 200:
        return render(
            request,
            "standards_import.html",
            {"result": None, "report": None, "error": refusal_of(answer, language_of(request))},
            status_code=answer.status_code,
            session=session,
        )
    headers = {"Content-Disposition": answer.headers.get("content-disposition", "attachment")}
    return Response(answer.content, media_type=XLSX, headers=headers)
