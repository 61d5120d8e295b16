"""Administration (系统管理): editing an existing user, group or role.

`GET /console/admin/{users|groups|roles}/{name}` shows the form with the current values;
`POST` to the same address saves only what changed, as the API's `PATCH` (a user's display name,
roles, groups, disabled, a new password, the notice e-mail address and language (user_contact.py:
a mistyped address is refused next to its field in the page's language); a group's description and roles; a role's description and
permissions). A group's members are its users' `groups`: an added or removed member is a `PATCH
/users/{member}` of that user's groups, so the API checks and audits each one. The API decides who
may change what (users:manage, no handing out permissions one lacks, built-in roles are fixed);
its refusal is shown above the form, which keeps what was typed."""

from __future__ import annotations

from typing import Any

import httpx
from fastapi import APIRouter, Depends, Request
from fastapi.responses import RedirectResponse, Response

from api.console.backend import Backend, refusal_of, segment
from api.console.i18n import language_of
from api.console.pages_admin import LISTS, _names
from api.console.session import PATH, ConsoleRoute, Session, render, signed_in
from api.console.user_contact import LANGS, contact_changes, contact_of

router = APIRouter(route_class=ConsoleRoute)
EDITABLE = ("users", "groups", "roles")
LIST_FIELDS = {"users": ("roles", "groups"), "groups": ("roles", "members"), "roles": ("permissions",)}
TEXT_FIELDS = {"users": ("display_name",), "groups": ("description",), "roles": ("description",)}


def _address(section: str, name: str) -> str:
    return f"{LISTS[section]}/{segment(name)}"


def changes_of(section: str, current: dict, form) -> dict[str, Any]:
    """The PATCH body: the form's fields that differ from the current values (lists compared as
    sets, so a reordering is no change). Members are not part of it (see `_member_moves`)."""
    body: dict[str, Any] = {}
    for key in TEXT_FIELDS[section]:
        value = str(form.get(key) or "").strip()
        if value != (current.get(key) or ""):
            body[key] = value
    for key in LIST_FIELDS[section]:
        value = _names(form.get(key))
        if key != "members" and set(value) != set(current.get(key) or []):
            body[key] = value
    if section == "users":
        disabled = form.get("disabled") == "on"
        if disabled != bool(current.get("disabled")):
            body["disabled"] = disabled
        if str(form.get("password") or ""):
            body["password"] = str(form["password"])
        body |= contact_changes(contact_of(form)[0], current)
    return body


async def _member_moves(api: Backend, group: dict, wanted: list[str]) -> httpx.Response | None:
    """Add the group to new members' groups and take it from removed ones; the first refusal."""
    name, before = group["name"], set(group.get("members") or [])
    for username in sorted(set(wanted) ^ before):
        user = await api.get(_address("users", username))
        if user.status_code != 200:
            return user
        held = user.json()["groups"]
        groups = [*held, name] if username in wanted else [g for g in held if g != name]
        answer = await api.call("PATCH", _address("users", username), json={"groups": groups})
        if answer.status_code != 200:
            return answer
    return None


async def _page(request: Request, session: Session, section: str, name: str, **extra) -> Response:
    answer = await Backend(request, session.token).get(_address(section, name))
    context: dict[str, Any] = {"section": section, "name": name, "item": None, "error": None}
    context |= {"form_error": None, "saved": False, "form": None, "can_manage": session.can("users:manage")}
    context |= {"langs": LANGS, "problems": {}}
    if answer.status_code == 200:
        context["item"] = answer.json()
    else:
        context["error"] = refusal_of(answer, language_of(request))
    status = extra.pop("status", 200)
    context.update(extra)
    return render(request, "admin_edit.html", context, session=session, status_code=status)


@router.get("/admin/{section}/{name}")
async def edit_page(section: str, name: str, request: Request, session: Session = Depends(signed_in)) -> Response:
    if section not in EDITABLE:
        return Response(status_code=404)
    # ?saved=1: where a save's redirect lands ("saved" said on the page; a reload saves nothing)
    return await _page(request, session, section, name, saved=request.query_params.get("saved") == "1")


@router.post("/admin/{section}/{name}")
async def edit_save(section: str, name: str, request: Request, session: Session = Depends(signed_in)) -> Response:
    """Save the changed fields; then 303 to the form's page saying "saved" (a reload repeats
    nothing), or the form again with the API's refusal (and its status)."""
    if section not in EDITABLE:
        return Response(status_code=404)
    api = Backend(request, session.token)
    current = await api.get(_address(section, name))
    if current.status_code != 200:
        return await _page(request, session, section, name)
    form = await request.form()
    kept = {k: v for k, v in form.items() if k not in ("password", "csrf_token")}
    problems = contact_of(form)[1] if section == "users" else {}
    if problems:  # said next to the fields, in the page's language; nothing saved
        return await _page(request, session, section, name, form=kept, problems=problems, status=422)
    body = changes_of(section, current.json(), form)
    refused = await api.call("PATCH", _address(section, name), json=body) if body else None
    if refused is not None and refused.status_code == 200:
        refused = None
    if refused is None and section == "groups":
        refused = await _member_moves(api, current.json(), _names(form.get("members")))
    if refused is None:
        return RedirectResponse(f"{PATH}/admin/{section}/{segment(name)}?saved=1", status_code=303)
    error = refusal_of(refused, language_of(request))
    return await _page(request, session, section, name, form_error=error, form=kept, status=refused.status_code)
