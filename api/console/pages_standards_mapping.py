"""Data standards mapping of one catalogue dataset (数据标准映射, issue 16 in the console): its fields'
current mappings (`GET /standards/mappings?dataset=`), suggested data elements for the unmapped
ones from names and comments, or, with "suggest from values" (按取值建议), from a sample of a
ClickHouse table's values (`GET /standards/suggestions?dataset=&values=true`), each with its
evidence (score, basis, the checks: how many sampled values are codes of the element's code set,
match its format, fit its length or type). A person confirms a suggestion (`POST
/console/standards/mapping` -> `POST /standards/mappings`, method `suggested` with its score); the
API checks standards:view / standards:manage and the tenant, and its refusal is shown on the page."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends, Request
from fastapi.responses import RedirectResponse, Response

from api.console.backend import Backend, detail_of, segment
from api.console.session import PATH, ConsoleRoute, Session, render, signed_in

router = APIRouter(route_class=ConsoleRoute)
URN_MAX = 1000


def _urn(raw: Any) -> str:
    return str(raw or "")[:URN_MAX]


async def mapping_view(request: Request, session: Session, dataset: str, values: bool, **extra: Any) -> Response:
    """The page; `extra`: `done` (the field just mapped) or `confirm_error` (the API's refusal)."""
    api = Backend(request, session.token)
    context: dict[str, Any] = {"dataset": dataset, "values": values, "error": None, "done": None}
    context |= {"confirm_error": None, "can_manage": session.can("standards:manage"), "suggestion_error": None}
    status = extra.pop("status", 200)
    context.update(extra)
    if not dataset:
        context["error"] = "dataset"
        return render(request, "standards_mapping.html", context, status_code=422, session=session)
    ds = await api.get(f"/metadata/datasets/{segment(dataset)}")
    if ds.status_code != 200:
        context["error"] = detail_of(ds)
        return render(request, "standards_mapping.html", context, status_code=ds.status_code, session=session)
    mapped = await api.get("/standards/mappings", params={"dataset": dataset})
    if mapped.status_code != 200:
        context["error"] = detail_of(mapped)
        return render(request, "standards_mapping.html", context, status_code=mapped.status_code, session=session)
    query = {"dataset": dataset, **({"values": "true"} if values else {})}
    suggested = await api.get("/standards/suggestions", params=query)
    found = suggested.json()["fields"] if suggested.status_code == 200 else []
    if suggested.status_code != 200:
        context["suggestion_error"] = detail_of(suggested)
    context |= {
        "ds": ds.json(),
        "mappings": {m["field"]: m for m in mapped.json()},
        "suggested": found,
        "with_suggestions": sum(1 for f in found if f["suggestions"]),
    }
    return render(request, "standards_mapping.html", context, status_code=status, session=session)


@router.get("/standards/mapping")
async def mapping_page(request: Request, session: Session = Depends(signed_in)) -> Response:
    params = request.query_params
    done = (params.get("done") or "")[:200] or None
    return await mapping_view(request, session, _urn(params.get("dataset")), params.get("values") == "1", done=done)


@router.post("/standards/mapping")
async def mapping_confirm(request: Request, session: Session = Depends(signed_in)) -> Response:
    """Confirm one suggestion: the field mapped to the element (replacing any mapping it had)."""
    form = await request.form()
    dataset, values = _urn(form.get("dataset")), form.get("values") == "1"
    field = str(form.get("field", ""))[:500]
    raw_score = str(form.get("score", ""))
    try:
        score: float | None = min(max(float(raw_score), 0.0), 1.0) if raw_score else None
    except ValueError:
        score = None
    body = {"field_urn": f"{dataset}#{field}", "element": str(form.get("element", ""))[:100], "method": "suggested"}
    answer = await Backend(request, session.token).post("/standards/mappings", json={**body, "score": score})
    if answer.status_code != 200:
        refusal = {"field": field, "reason": detail_of(answer)}
        return await mapping_view(request, session, dataset, values, confirm_error=refusal, status=answer.status_code)
    back = f"{PATH}/standards/mapping?dataset={segment(dataset)}&done={segment(field)}"
    return RedirectResponse(back + ("&values=1" if values else "") + "#mapped-h", status_code=303)
