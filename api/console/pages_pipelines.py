"""Pipelines: list, one pipeline's graph (`GET /pipelines/{name}/graph`, drawn by cytoscape.js) with
its per-stage counts (`GET /pipelines/{name}/stats`, polled), its deployment and the deploy/undeploy
buttons (shown with `pipeline:deploy`; the API decides)."""

from __future__ import annotations

import json

from fastapi import APIRouter, Depends, Request
from fastapi.responses import JSONResponse, Response

from api.console.backend import Backend, detail_of, segment
from api.console.session import ConsoleRoute, Session, render, signed_in

router = APIRouter(route_class=ConsoleRoute)


PAGE = 50  # pipelines per page


@router.get("/pipelines")
async def pipelines_page(request: Request, session: Session = Depends(signed_in)) -> Response:
    """A page of 50 by name (`GET /pipelines?limit=&offset=&q=`), previous/next, a name filter."""
    q = (request.query_params.get("q") or "").strip()[:200]
    raw = request.query_params.get("offset") or ""
    offset = int(raw) - int(raw) % PAGE if raw.isdigit() and len(raw) < 10 else 0
    params: dict = {"limit": PAGE, "offset": offset}
    if q:
        params["q"] = q
    answer = await Backend(request, session.token).get("/pipelines", params=params)
    ok = answer.status_code == 200
    rows = answer.json() if ok else []
    total = int(answer.headers.get("x-total-count") or len(rows)) if ok else 0
    context = {
        "pipelines": rows,
        "error": None if ok else detail_of(answer),
        "q": q,
        "offset": offset,
        "page": PAGE,
        "total": total,
        "more": offset + PAGE < total,
    }
    return render(request, "pipelines.html", context, session=session)


def graph_json(graph: dict) -> str:
    """The graph for the page's script, safe inside <script type="application/json">."""
    return json.dumps(graph, ensure_ascii=False).replace("<", "\\u003c").replace(">", "\\u003e")


async def _deployment(api: Backend, name: str) -> tuple[dict | None, str | None]:
    answer = await api.get(f"/pipelines/{segment(name)}/deployment")
    if answer.status_code == 200:
        return answer.json(), None
    return None, detail_of(answer)


@router.get("/pipelines/{name}")
async def pipeline_page(name: str, request: Request, session: Session = Depends(signed_in)) -> Response:
    api = Backend(request, session.token)
    graph = await api.get(f"/pipelines/{segment(name)}/graph")
    if graph.status_code != 200:
        context = {"name": name, "error": detail_of(graph)}
        return render(request, "pipeline.html", context, status_code=graph.status_code, session=session)
    document = await api.get(f"/pipelines/{segment(name)}")
    deployment, deployment_error = await _deployment(api, name)
    context = {
        "name": name,
        "graph": graph_json(graph.json()),
        "pipeline": document.json() if document.status_code == 200 else {},
        "deployment": deployment,
        "deployment_error": deployment_error,
        "can_edit": session.can("pipeline:edit"),
        "saved": request.query_params.get("saved", "") if request.query_params.get("saved", "").isdigit() else None,
    }
    return render(request, "pipeline.html", context, session=session)


def node_counts(stages: dict[str, dict[str, int]]) -> dict[str, int]:
    """The stage counters as counts on the graph's nodes (ids of api/pipelines/graph.py): what the
    source read, the runner read from the raw topic, each rule rejected, went clean / to quarantine,
    and the sink wrote."""
    runner = stages.get("runner", {})
    counts = {
        "source": stages.get("source", {}).get("read"),
        "topic:raw": runner.get("read"),
        "topic:clean": runner.get("valid"),
        "topic:quarantine": runner.get("quarantined"),
        "sink": stages.get("sink", {}).get("written"),
    }
    for key, value in runner.items():
        if key.startswith("quarantined."):
            counts[f"rule:{key.split('.', 1)[1]}"] = value
    return {node: int(n) for node, n in counts.items() if n is not None}


@router.get("/pipelines/{name}/stats.json")
async def pipeline_counts(name: str, request: Request, session: Session = Depends(signed_in)) -> Response:
    """Counts per graph node; {} before the pipeline has run (the API's 404 for no statistics)."""
    answer = await Backend(request, session.token).get(f"/pipelines/{segment(name)}/stats")
    if answer.status_code == 200:
        return JSONResponse({"counts": node_counts(answer.json().get("stages", {}))})
    if answer.status_code == 404 and "no statistics" in detail_of(answer):
        return JSONResponse({"counts": {}})
    return JSONResponse({"error": detail_of(answer)}, status_code=answer.status_code)


@router.post("/pipelines/{name}/{action}")
async def pipeline_action(name: str, action: str, request: Request, session: Session = Depends(signed_in)) -> Response:
    """deploy / undeploy; answers the deployment panel again."""
    if action not in ("deploy", "undeploy"):
        return Response(status_code=404)
    api = Backend(request, session.token)
    answer = await api.post(f"/pipelines/{segment(name)}/{action}")
    deployment, deployment_error = await _deployment(api, name)
    context = {
        "name": name,
        "deployment": deployment,
        "deployment_error": deployment_error,
        "action_error": detail_of(answer) if answer.status_code >= 400 else None,
        "action_done": action if answer.status_code < 400 else None,
    }
    return render(request, "_deployment.html", context, session=session)
