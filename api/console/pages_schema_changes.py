"""Schema changes (表结构变更, issue 15 in the console): the changes capture tasks met, followed
(applied) or held (capture stopped until an operator decides), per connector
(`GET /connectors/{name}/schema-changes`) or the newest over all of the person's connectors
(`GET /schema-changes`), with the accept action for a held one (`POST /connectors/{name}/schema-changes/{id}/accept`, mode new_version or new_topic) shown to
people holding connector:manage; the API refuses anyone else anyway.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends, Request
from fastapi.responses import RedirectResponse, Response

from api.console.backend import Backend, detail_of, segment
from api.console.session import PATH, ConsoleRoute, Session, render, signed_in

router = APIRouter(route_class=ConsoleRoute)
STATUSES = ("held", "applied", "accepted")
MODES = ("new_version", "new_topic")
MAX_CONNECTORS = 100  # connectors offered in the filter; a name beyond them works in the URL
MAX_CHANGES = 200  # the newest changes over all connectors


async def _changes(api: Backend, connector: str, status: str | None) -> tuple[list[dict], str | None]:
    """One connector's changes, or the newest of every connector the person may see; held first."""
    params: dict[str, Any] = {"status": status} if status else {}
    if connector:
        answer = await api.get(f"/connectors/{segment(connector)}/schema-changes", params=params)
    else:
        answer = await api.get("/schema-changes", params={**params, "limit": MAX_CHANGES})
    if answer.status_code != 200:
        return [], detail_of(answer)
    found = answer.json()
    found.sort(key=lambda c: (c["status"] != "held", -(c.get("created_at") or 0)))
    return found, None


async def _context(request: Request, session: Session, connector: str, status: str | None) -> dict[str, Any]:
    api = Backend(request, session.token)
    context: dict[str, Any] = {
        "connector": connector,
        "status": status,
        "statuses": STATUSES,
        "modes": MODES,
        "can_accept": session.can("connector:manage"),
        "changes": [],
        "more": False,
        "connectors": [],
    }
    listed = await api.get("/connectors", params={"limit": MAX_CONNECTORS})
    if listed.status_code != 200:
        context["error"] = detail_of(listed)
        return context
    context["connectors"] = listed.json()
    context["more"] = int(listed.headers.get("X-Total-Count", "0")) > MAX_CONNECTORS
    context["changes"], context["error"] = await _changes(api, connector, status)
    return context


@router.get("/catalog/schema-changes")
async def schema_changes_page(request: Request, session: Session = Depends(signed_in)) -> Response:
    params = request.query_params
    status = params.get("status") if params.get("status") in STATUSES else None
    context = await _context(request, session, (params.get("connector") or "").strip(), status)
    context["accepted"] = params.get("accepted")
    code = 404 if context.get("error") and params.get("connector") else 200
    return render(request, "schema_changes.html", context, status_code=code, session=session)


@router.post("/catalog/schema-changes/accept")
async def accept(request: Request, session: Session = Depends(signed_in)) -> Response:
    """Accept a held change as the form says; back to the list, or the list with the API's refusal."""
    form = await request.form()
    name, change, mode = str(form.get("connector", "")), str(form.get("id", "")), str(form.get("mode", ""))
    back = str(form.get("back", ""))
    if not change.isdigit():
        answer_error, code = "id", 422
    else:
        path = f"/connectors/{segment(name)}/schema-changes/{change}/accept"
        answer = await Backend(request, session.token).post(path, json={"mode": mode})
        if answer.status_code == 200:
            where = f"connector={segment(name)}&" if back == "connector" else ""
            return RedirectResponse(f"{PATH}/catalog/schema-changes?{where}accepted={change}", status_code=303)
        answer_error, code = detail_of(answer), answer.status_code
    context = await _context(request, session, name if back == "connector" else "", None)
    context["accept_error"] = answer_error
    context["failed"] = change
    return render(request, "schema_changes.html", context, status_code=code, session=session)
