"""Connectors: list with states, actions per row (htmx), and a create form built from the plugin's
JSON schema (the definitions of `PUT /connector-plugins/{plugin}/config/validate`), showing the
API's field-level errors next to their fields."""

from __future__ import annotations

import json
from typing import Any

from fastapi import APIRouter, Depends, Request
from fastapi.responses import RedirectResponse, Response

from api.console.backend import Backend, detail_of, segment
from api.console.session import CSRF_FIELD, PATH, ConsoleRoute, Session, render, signed_in

router = APIRouter(route_class=ConsoleRoute)
ACTIONS = {"pause": ("PUT", "pause"), "resume": ("PUT", "resume"), "restart": ("POST", "restart")}
HIDDEN = {"connector.class", "name"}  # the plugin is chosen above the form; the name has its own field


PAGE = 50  # connectors per page


async def _connectors(api: Backend, offset: int, q: str) -> tuple[dict, int, str | None]:
    """A page of `GET /connectors?expand=status&expand=info` (by name) and how many match."""
    params = [("expand", "status"), ("expand", "info"), ("limit", PAGE), ("offset", offset)]
    if q:
        params.append(("q", q))
    answer = await api.get("/connectors", params=params)
    if answer.status_code != 200:
        return {}, 0, f"{answer.status_code}: {detail_of(answer)}"
    found = answer.json()
    return found, int(answer.headers.get("x-total-count") or len(found)), None


def _row(name: str, entry: dict) -> dict:
    status = entry.get("status", {})
    config = entry.get("info", {}).get("config", {})
    return {
        "name": name,
        "plugin": config.get("connector.class", ""),
        "type": entry.get("info", {}).get("kind") or entry.get("info", {}).get("type", ""),
        "state": status.get("connector", {}).get("state", "UNASSIGNED"),
        "tasks": status.get("tasks", []),
    }


@router.get("/connectors")
async def connectors_page(request: Request, session: Session = Depends(signed_in)) -> Response:
    """50 per page by name, previous/next, a name filter (`?q=`)."""
    q = (request.query_params.get("q") or "").strip()[:200]
    raw = request.query_params.get("offset") or ""
    offset = int(raw) - int(raw) % PAGE if raw.isdigit() and len(raw) < 10 else 0
    found, total, error = await _connectors(Backend(request, session.token), offset, q)
    rows = [_row(name, entry) for name, entry in sorted(found.items())]
    context = {"rows": rows, "error": error, "q": q, "offset": offset, "page": PAGE, "total": total}
    context["more"] = offset + PAGE < total
    return render(request, "connectors.html", context, session=session)


@router.post("/connectors/{name}/{action}")
async def connector_action(name: str, action: str, request: Request, session: Session = Depends(signed_in)) -> Response:
    """pause / resume / restart / delete; answers the row again (or nothing once deleted)."""
    api = Backend(request, session.token)
    if action == "delete":
        answer = await api.delete(f"/connectors/{segment(name)}")
    elif action in ACTIONS:
        method, verb = ACTIONS[action]
        answer = await api.call(method, f"/connectors/{segment(name)}/{verb}")
    else:
        return Response(status_code=404)
    error = detail_of(answer) if answer.status_code >= 400 else None
    if action == "delete" and error is None:
        return Response("", media_type="text/html")
    status = await api.get(f"/connectors/{segment(name)}/status")
    info = await api.get(f"/connectors/{segment(name)}")
    if status.status_code != 200 or info.status_code != 200:
        return render(request, "_message.html", {"error": error or detail_of(status)}, session=session)
    row = _row(name, {"status": status.json(), "info": info.json()})
    return render(request, "_connector_row.html", {"row": row, "row_error": error}, session=session)


async def _definitions(api: Backend, plugin: str) -> tuple[list[dict], str | None]:
    answer = await api.put(f"/connector-plugins/{segment(plugin)}/config/validate", json={})
    if answer.status_code != 200:
        return [], detail_of(answer)
    fields = []
    for config in answer.json().get("configs", []):
        definition = config["definition"]
        if definition["name"] in HIDDEN:
            continue
        fields.append(
            {
                "name": definition["name"],
                "type": definition["type"],
                "required": definition["required"],
                "default": definition.get("default_value"),
                "help": definition.get("documentation", ""),
            }
        )
    return fields, None


def _value(field: dict, raw: str) -> Any:
    """Form text as the schema's type; text that does not parse is sent as is, for the API to name."""
    kind = field["type"]
    if kind == "BOOLEAN":
        return raw == "true"
    if kind in ("INT", "LONG", "SHORT"):
        try:
            return int(raw)
        except ValueError:
            return raw
    if kind == "DOUBLE":
        try:
            return float(raw)
        except ValueError:
            return raw
    if kind in ("LIST", "MAP") or raw.lstrip().startswith(("[", "{")):
        try:
            return json.loads(raw)
        except ValueError:
            return [part.strip() for part in raw.split(",") if part.strip()] if kind == "LIST" else raw
    return raw


async def _plugins(api: Backend) -> tuple[list[dict], str | None]:
    answer = await api.get("/connector-plugins")
    if answer.status_code != 200:
        return [], detail_of(answer)
    return answer.json(), None


@router.get("/connectors/new")
async def new_connector(request: Request, session: Session = Depends(signed_in)) -> Response:
    api = Backend(request, session.token)
    plugins, error = await _plugins(api)
    plugin = request.query_params.get("plugin") or ""
    fields: list[dict] = []
    if plugin:
        fields, error = await _definitions(api, plugin)
    context = {"plugins": plugins, "plugin": plugin, "fields": fields, "values": {}, "errors": {}, "error": error}
    return render(request, "connector_new.html", context, session=session)


@router.post("/connectors/new")
async def create_connector(request: Request, session: Session = Depends(signed_in)) -> Response:
    api = Backend(request, session.token)
    form = await request.form()
    plugin = str(form.get("plugin", ""))
    name = str(form.get("connector_name", "")).strip()
    fields, error = await _definitions(api, plugin)
    values = {f["name"]: str(form.get("cfg." + f["name"], "")) for f in fields}
    config: dict[str, Any] = {"connector.class": plugin}
    for field in fields:
        raw = values[field["name"]]
        if field["type"] == "BOOLEAN":  # every box is on the form: an unticked one means false
            config[field["name"]] = _value(field, raw)
        elif raw.strip():
            config[field["name"]] = _value(field, raw.strip())
    if name:
        config["name"] = name
    errors: dict[str, list[str]] = {}
    if error is None:
        answer = await api.post("/connectors", json={"name": name or None, "config": config})
        if answer.status_code == 201:
            return RedirectResponse(f"{PATH}/connectors", status_code=303)
        body = answer.json() if answer.headers.get("content-type", "").startswith("application/json") else {}
        for item in body.get("errors", []) if isinstance(body, dict) else []:
            key = item.get("field", "")
            target = "connector_name" if key == "name" else key.split(".")[0]
            errors.setdefault(target if target in values or target == "connector_name" else "", []).append(
                item.get("message", "")
            )
        if not errors:
            error = detail_of(answer)
    plugins, _ = await _plugins(api)
    context = {
        "plugins": plugins,
        "plugin": plugin,
        "fields": fields,
        "values": values,
        "name": name,
        "errors": errors,
        "error": error,
        "csrf_field": CSRF_FIELD,
    }
    return render(request, "connector_new.html", context, status_code=422, session=session)
