"""The pipeline graph editor and version history (issue 18).

`GET /console/pipelines/{name}/edit`: the draft document drawn as a graph (static/editor.js), a
palette of the transforms and rules of `GET /components` (drag one onto the graph), a form per node
from its component's JSON schema. `POST` saves the draft as a new version through
`PUT /pipelines/{name}?version=` (optimistic locking: a stale base is refused by the API with who
saved the newer version, and the page keeps the person's draft); the API validates everything.
`GET /console/pipelines/{name}/versions[?from=&to=]`: versions, and the diff of two drawn on the
graph (changed and added steps marked; steps matched by id, not position: api/pipelines/step_diff.py)
with the changed steps listed beside it, and the other changes of the API's JSON diff.
Shown with `pipeline:edit`; the API decides anyway."""

from __future__ import annotations

import json
from typing import Any
from urllib.parse import urlencode

from fastapi import APIRouter, Depends, Request
from fastapi.responses import RedirectResponse, Response
from pydantic import ValidationError

from api.console.backend import Backend, detail_of, segment
from api.console.pages_pipelines import graph_json
from api.console.session import PATH, ConsoleRoute, Session, render, signed_in
from api.pipelines.graph import graph as draw
from api.pipelines.step_diff import marks as step_marks
from api.pipelines.step_diff import step_changes
from connectors.pipeline import PipelineSpec

router = APIRouter(route_class=ConsoleRoute)
STEPS = ("transforms", "rules")


def palette(components: dict) -> dict[str, dict[str, Any]]:
    """{transform: {kind: schema}, rule: {kind: schema}} of the component catalogue."""
    return {
        "transform": {e["kind"]: e["schema"] for e in components.get("transforms", [])},
        "rule": {e["kind"]: e["schema"] for e in components.get("rules", [])},
    }


def editable(document: dict) -> dict:
    """The parts of a pipeline document the editor changes, with empty steps where it has none."""
    draft = {k: v for k, v in document.items() if k not in ("tenant",)}
    for key in STEPS:
        draft.setdefault(key, [])
    return draft


def error_list(answer) -> list[str]:
    """The API's refusal as lines: each validation error with where it is, or the one message."""
    try:
        detail = answer.json().get("detail")
    except (ValueError, AttributeError):
        detail = None
    if isinstance(detail, list):
        return [f"{'.'.join(str(p) for p in e.get('loc', []) if p != 'body')}: {e.get('msg')}" for e in detail]
    return [detail_of(answer)]


async def _editor(request: Request, session: Session, name: str, draft: dict | None, version: int | None, **extra):
    api = Backend(request, session.token)
    current = await api.get(f"/pipelines/{segment(name)}")
    if current.status_code != 200:
        context = {"name": name, "error": detail_of(current)}
        return render(request, "pipeline_edit.html", context, status_code=current.status_code, session=session)
    components = await api.get("/components")
    head = current.json()
    context = {
        "name": name,
        "version": version if version is not None else head["version"],
        "head": head,
        "draft": graph_json(editable(draft if draft is not None else head["document"])),
        "palette": palette(components.json() if components.status_code == 200 else {}),
        "can_edit": session.can("pipeline:edit"),
        **extra,
    }
    context["palette_json"] = graph_json(context["palette"])
    return render(request, "pipeline_edit.html", context, status_code=extra.pop("status", 200), session=session)


@router.get("/pipelines/{name}/edit")
async def editor_page(name: str, request: Request, session: Session = Depends(signed_in)) -> Response:
    return await _editor(request, session, name, None, None)


@router.post("/pipelines/{name}/edit")
async def save_draft(name: str, request: Request, session: Session = Depends(signed_in)) -> Response:
    form = await request.form()
    raw_version = str(form.get("version") or "")
    try:
        draft = json.loads(str(form.get("document") or ""))
        if not isinstance(draft, dict):
            raise ValueError
    except ValueError:
        return await _editor(request, session, name, None, None, errors=["document: not a JSON object"], status=422)
    if not raw_version.isdigit():
        return await _editor(request, session, name, draft, None, errors=["version: missing"], status=422)
    message = str(form.get("message") or "")[:2000]
    answer = await Backend(request, session.token).put(
        f"/pipelines/{segment(name)}", json=draft, params={"version": raw_version, "message": message}
    )
    if answer.status_code == 200:
        saved = answer.json()["version"]
        return RedirectResponse(f"{PATH}/pipelines/{segment(name)}?saved={saved}", status_code=303)
    # a refusal keeps the person's draft and base version: nothing they drew is lost
    stale = answer.status_code == 409
    return await _editor(
        request,
        session,
        name,
        draft,
        int(raw_version),
        errors=error_list(answer),
        stale=stale,
        status=answer.status_code,
    )


def other_changes(changes: list[dict]) -> list[dict]:
    """The API's JSON diff outside the steps, source and sink (description, runner...), which
    `step_changes` lists step by step instead."""
    return [c for c in changes if c["path"].strip("/").split("/")[0] not in (*STEPS, "source", "sink")]


async def _document(api: Backend, name: str, version: int) -> dict:
    answer = await api.get(f"/pipelines/{segment(name)}/versions/{version}")
    return answer.json().get("document", {}) if answer.status_code == 200 else {}


@router.get("/pipelines/{name}/versions")
async def versions_page(name: str, request: Request, session: Session = Depends(signed_in)) -> Response:
    api = Backend(request, session.token)
    versions = await api.get(f"/pipelines/{segment(name)}/versions")
    if versions.status_code != 200:
        context = {"name": name, "error": detail_of(versions)}
        return render(request, "pipeline_versions.html", context, status_code=versions.status_code, session=session)
    listed = versions.json()
    params = {k: v for k in ("from", "to") if (v := request.query_params.get(k, "")).isdigit()}
    diff = await api.get(f"/pipelines/{segment(name)}/diff", params=params)
    context: dict[str, Any] = {"name": name, "versions": listed}
    if diff.status_code != 200:
        context["diff_error"] = detail_of(diff)
        return render(request, "pipeline_versions.html", context, session=session)
    body = diff.json()
    document = await _document(api, name, body["to"])
    steps = step_changes(await _document(api, name, body["from"]), document)
    marks = step_marks(steps)
    drawn = {"nodes": [], "edges": []}
    try:  # the newer version drawn as the pipeline page draws the current one
        drawn = draw(PipelineSpec.model_validate(document), request.app.state.settings.topic_prefix)
    except ValidationError:
        pass
    for node in drawn["nodes"]:
        node["mark"] = marks.get(node["id"], "")
    context.update(
        diff=body,
        steps=steps,
        others=other_changes(body["changes"]),
        marks=marks,
        graph=graph_json(drawn),
        query=urlencode({"from": body["from"], "to": body["to"]}),
    )
    return render(request, "pipeline_versions.html", context, session=session)
