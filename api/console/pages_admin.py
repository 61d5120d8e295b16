"""Administration (系统管理): users, groups, roles and API keys (`/users`, `/groups`, `/roles`,
`/api-keys`: lists of 50 a page (paging.py), a create form each, disabling a user, revoking a key; a new key is shown once,
on the page that created it), the audit log search (`/audit`, older entries by `before_id`) and the
system log search (`/logs`). The API decides who may (users:manage, audit:view, ops:view) and
what a tenant admin may hand out; its refusals are shown in the page's language."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends, Request
from fastapi.responses import RedirectResponse, Response

from api.console.backend import Backend, refusal_of, segment
from api.console.flash import redirect_with, take
from api.console.i18n import language_of
from api.console.paging import page_of
from api.console.session import PATH, ConsoleRoute, Session, render, signed_in
from api.console.user_contact import LANGS, contact_of

router = APIRouter(route_class=ConsoleRoute)
LISTS = {"users": "/users", "groups": "/groups", "roles": "/roles", "api-keys": "/api-keys"}
OUTCOMES = ("success", "denied", "rejected", "error")
LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR")
AUDIT_PAGE = 50


def _names(raw: Any) -> list[str]:
    """A comma- (or 、/，-) separated form field as a list of names."""
    text = str(raw or "").replace("，", ",").replace("、", ",")
    return [part.strip() for part in text.split(",") if part.strip()]


def _body(section: str, form) -> dict[str, Any]:
    get = lambda key: str(form.get(key) or "").strip()  # noqa: E731
    if section == "users":
        body = {"username": get("username"), "password": str(form.get("password") or "")}
        body |= {"display_name": get("display_name"), "roles": _names(form.get("roles"))}
        contact = {k: v for k, v in contact_of(form)[0].items() if v}  # unset: no address, zh
        return body | {"groups": _names(form.get("groups"))} | contact
    if section == "groups":
        return {"name": get("name"), "description": get("description"), "roles": _names(form.get("roles"))}
    if section == "roles":
        return {"name": get("name"), "description": get("description"), "permissions": _names(form.get("permissions"))}
    days = get("expires_in_days")
    return {"name": get("name"), "roles": _names(form.get("roles"))} | (
        {"expires_in_days": int(days)} if days.isdigit() else {}
    )


async def _section(request: Request, session: Session, section: str, **extra) -> Response:
    answer = await Backend(request, session.token).get(LISTS[section])
    context: dict[str, Any] = {"section": section, "rows": [], "error": None, "created": None, "form_error": None}
    context["can_manage"] = session.can("users:manage")
    context |= {"langs": LANGS, "problems": {}}
    if answer.status_code == 200:
        context["rows"], context["pager"] = page_of(answer.json(), request)
    else:
        context["error"] = refusal_of(answer, language_of(request))
    context.update(extra)
    return render(request, "admin_identity.html", context, session=session)


@router.get("/admin")
@router.get("/admin/{section}")
async def admin_page(request: Request, section: str = "users", session: Session = Depends(signed_in)) -> Response:
    if section == "audit":
        return await _audit(request, session)
    if section == "logs":
        return await _logs(request, session)
    if section not in LISTS:
        return Response(status_code=404)
    # what a form just created (a new API key shown this once), after its redirect (flash.py)
    return await _section(request, session, section, created=take(request, session).get("created"))


@router.post("/admin/{section}")
async def admin_create(section: str, request: Request, session: Session = Depends(signed_in)) -> Response:
    """Create a user, group, role or API key through the API; then 303 to the section's page, which
    shows the result (a new API key shown once) so a reload creates nothing; or the page with the
    API's refusal next to the form."""
    if section not in LISTS:
        return Response(status_code=404)
    form = await request.form()
    problems = contact_of(form)[1] if section == "users" else {}
    if problems:  # a mistyped address or language: said next to its field in the page's language
        kept = {k: v for k, v in form.items() if k not in ("password", "csrf_token")}
        response = await _section(request, session, section, form=kept, problems=problems)
        response.status_code = 422
        return response
    answer = await Backend(request, session.token).post(LISTS[section], json=_body(section, form))
    if answer.status_code == 201:
        created = answer.json()
        back = f"{PATH}/admin/{section}"
        return redirect_with(request, session, back, created=created) or await _section(
            request, session, section, created=created
        )
    status = answer.status_code
    error = refusal_of(answer, language_of(request))
    response = await _section(request, session, section, form_error=error, form=dict(form))
    response.status_code = status
    return response


@router.post("/admin/users/{username}/{action}")
async def user_action(username: str, action: str, request: Request, session: Session = Depends(signed_in)) -> Response:
    """disable / enable a user (PATCH /users/{username})."""
    if action not in ("disable", "enable"):
        return Response(status_code=404)
    body = {"disabled": action == "disable"}
    answer = await Backend(request, session.token).call("PATCH", f"/users/{segment(username)}", json=body)
    if answer.status_code == 200:  # 303: a reload of the list does not act again
        return RedirectResponse(f"{PATH}/admin/users", status_code=303)
    return await _section(request, session, "users", form_error=refusal_of(answer, language_of(request)))


@router.post("/admin/api-keys/{key_id}/revoke")
async def revoke_key(key_id: str, request: Request, session: Session = Depends(signed_in)) -> Response:
    answer = await Backend(request, session.token).delete(f"/api-keys/{segment(key_id)}")
    if answer.status_code == 204:
        return RedirectResponse(f"{PATH}/admin/api-keys", status_code=303)
    return await _section(request, session, "api-keys", form_error=refusal_of(answer, language_of(request)))


async def _audit(request: Request, session: Session) -> Response:
    params = request.query_params
    chosen = {k: params[k].strip() for k in ("actor", "action", "since", "until") if (params.get(k) or "").strip()}
    if params.get("outcome") in OUTCOMES:
        chosen["outcome"] = params["outcome"]
    query: dict[str, Any] = {**chosen, "limit": AUDIT_PAGE}
    if (params.get("before_id") or "").isdigit():
        query["before_id"] = params["before_id"]
    answer = await Backend(request, session.token).get("/audit", params=query)
    context: dict[str, Any] = {"section": "audit", "chosen": chosen, "outcomes": OUTCOMES, "entries": [], "error": None}
    if answer.status_code == 200:
        entries = answer.json()
        context.update(entries=entries, older=entries[-1]["id"] if len(entries) == AUDIT_PAGE else None)
    else:
        context["error"] = refusal_of(answer, language_of(request))
    return render(request, "admin_audit.html", context, session=session)


async def _logs(request: Request, session: Session) -> Response:
    params = request.query_params
    chosen = {k: params[k].strip() for k in ("q", "since", "request_id") if (params.get(k) or "").strip()}
    if params.get("level") in LEVELS:
        chosen["level"] = params["level"]
    answer = await Backend(request, session.token).get("/logs", params={**chosen, "limit": 200})
    context: dict[str, Any] = {"section": "logs", "chosen": chosen, "levels": LEVELS, "lines": [], "error": None}
    if answer.status_code == 200:
        context["lines"] = answer.json()["lines"]
    else:
        context["error"] = refusal_of(answer, language_of(request))
    return render(request, "admin_logs.html", context, session=session)
