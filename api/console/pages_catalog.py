"""Catalogue pages (数据目录, issue 15 in the console): search with facets (`GET /metadata/search`),
a dataset's page (fields, business metadata edited through `PATCH /metadata/datasets/{urn}` when the
person holds metadata:manage, versions and the diff of two), its lineage graph at dataset or field
level with the impact of a change highlighted (`GET /lineage/{urn}`, `GET /impact/{urn}`), and the
data map (`GET /map`) with the asset totals (`GET /assets/summary`) as a chart.

URNs travel as the `urn` query parameter (they hold slashes and colons); the API calls put them
in the path percent-encoded, as any script would.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends, Request
from fastapi.responses import RedirectResponse, Response

from api.console.backend import Backend, detail_of, segment
from api.console.i18n import DEFAULT, catalogue, language_of
from api.console.pages_pipelines import graph_json
from api.console.session import PATH, ConsoleRoute, Session, render, signed_in

router = APIRouter(route_class=ConsoleRoute)
# facets the search answers; kind and system filter in the API, the others on the fetched results
FACETS = ("kind", "system", "type", "tag", "classification", "owner")
API_FILTERS = ("kind", "system")
PAGE = 50
MAX_OFFSET = 1000  # the API's deepest offset
FETCH_FILTERED = 200  # the API's largest page: filtered on type/tag/classification here
CLASSIFICATIONS = ("public", "internal", "sensitive", "secret")
BUSINESS = ("owner", "steward", "department", "classification", "description", "tags")


def _dataset_path(urn: str, tail: str = "") -> str:
    return f"/metadata/datasets/{segment(urn)}{tail}"


def _matches(item: dict, chosen: dict[str, str]) -> bool:
    if chosen.get("type") and item.get("type") != chosen["type"]:
        return False
    if chosen.get("tag") and chosen["tag"] not in (item.get("tags") or []):
        return False
    if chosen.get("classification") and item.get("classification") != chosen["classification"]:
        return False
    if chosen.get("owner") and item.get("owner") != chosen["owner"]:
        return False
    return True


@router.get("/catalog")
async def catalog_page(request: Request, session: Session = Depends(signed_in)) -> Response:
    params = request.query_params
    q = (params.get("q") or "").strip()
    chosen = {k: params[k] for k in FACETS if params.get(k)}
    local = any(k not in API_FILTERS for k in chosen)
    offset = int(params["offset"]) if (params.get("offset") or "").isdigit() and not local else 0
    offset = min(offset - offset % PAGE, MAX_OFFSET)
    context: dict[str, Any] = {
        "q": q,
        "chosen": chosen,
        "facet_names": FACETS,
        "result": None,
        "error": None,
        "offset": offset,
        "page": PAGE,
    }
    if q:
        query: list[tuple[str, str | int]] = [("q", q)]
        query += [(k, chosen[k]) for k in API_FILTERS if k in chosen]
        query.append(("limit", FETCH_FILTERED if local else PAGE))
        query.append(("offset", offset))
        answer = await Backend(request, session.token).get("/metadata/search", params=query)
        if answer.status_code == 200:
            result = answer.json()
            if local:
                result["items"] = [i for i in result["items"] if _matches(i, chosen)][:PAGE]
            context["result"] = result
            context["more"] = not local and offset + PAGE < result["total"]
        else:
            context["error"] = detail_of(answer)
    return render(request, "catalog.html", context, session=session)


VERSIONS_DETAILED = 20  # the newest versions whose changes are counted on the page


def changes_of(diff: dict) -> list[tuple[str, int]]:
    """A version's structured diff as (kind of change, how many), for the page's own words (the
    API's summary text is English)."""
    out = [(key, len(value)) for key, value in diff.items() if isinstance(value, list) and value]
    if diff.get("kind_changed"):
        out.append(("kind_changed", 1))
    return out


async def _versions(api: Backend, urn: str) -> list[dict]:
    answer = await api.get(_dataset_path(urn, "/versions"))
    if answer.status_code != 200:
        return []
    versions = answer.json()
    for v in versions[:VERSIONS_DETAILED]:
        one = await api.get(_dataset_path(urn, f"/versions/{int(v['version'])}"))
        if one.status_code == 200:
            v["changes"] = changes_of(one.json().get("diff") or {})
            v["first"] = v["version"] == 1
    return versions


async def _identities(api: Backend, name: str) -> set[str]:
    """The names a catalogue owner may give the person by: the name, and each of the groups
    `GET /auth/me` lists (`g` and `group:g`, as the API's decisions read them)."""
    answer = await api.get("/auth/me")
    groups = (answer.json().get("groups") or []) if answer.status_code == 200 else []
    return {name} | {g for group in groups for g in (group, f"group:{group}")}


async def access_of(api: Backend, session: Session, ds: dict) -> dict[str, Any] | None:
    """The "request access" (申请访问) part of a dataset's page (issue 17), for people holding
    services:apply: their own requests for it (`GET /access-requests?dataset=`), how many wait for
    them as its owner, and whether to offer the form: not to its owner (the user it names, or a
    member of the group it names), nor once a request was approved or still waits, nor to one who
    is listed others' requests for it (the API lists those only to its owner)."""
    if not session.can("services:apply"):
        return None
    me = session.principal.name
    answer = await api.get("/access-requests", params={"dataset": ds["urn"]})
    listed = answer.json() if answer.status_code == 200 else []
    mine = [r for r in listed if r["requester"] == me]
    owner = (ds.get("business") or {}).get("owner")
    owns = bool(owner) and owner in await _identities(api, me)
    return {
        "mine": mine,
        "owns": owns,
        "waiting": sum(1 for r in listed if r["requester"] != me and r["status"] == "pending"),
        "offer": not owns
        and len(mine) == len(listed)
        and not any(r["status"] in ("approved", "pending") for r in mine),
        "error": None if answer.status_code == 200 else detail_of(answer),
    }


async def dataset_view(request: Request, session: Session, urn: str, **extra: Any) -> Response:
    """The dataset's page; `extra` adds to (or overrides) its context, e.g. a refused form's error."""
    api = Backend(request, session.token)
    answer = await api.get(_dataset_path(urn))
    if answer.status_code != 200:
        context = {"urn": urn, "error": detail_of(answer)}
        return render(request, "dataset.html", context, status_code=answer.status_code, session=session)
    versions = await _versions(api, urn)
    ds = answer.json()
    context = {
        "urn": urn,
        "ds": ds,
        "versions": versions,
        "can_edit": session.can("metadata:manage"),
        "classifications": CLASSIFICATIONS,
        "fields_saved": request.query_params.get("saved") == "fields",
        "access": await access_of(api, session, ds),
        "asked": request.query_params.get("asked") == "1",
    }
    status = extra.pop("status", 200)
    context.update(extra)
    return render(request, "dataset.html", context, status_code=status, session=session)


@router.get("/catalog/dataset")
async def dataset_page(request: Request, session: Session = Depends(signed_in)) -> Response:
    return await dataset_view(request, session, request.query_params.get("urn", ""))


@router.get("/catalog/dataset/diff")
async def dataset_diff(request: Request, session: Session = Depends(signed_in)) -> Response:
    """The difference of two versions (an htmx fragment)."""
    params = request.query_params
    urn = params.get("urn", "")
    query = {"from": params.get("from", ""), "to": params.get("to", "")}
    answer = await Backend(request, session.token).get(_dataset_path(urn, "/diff"), params=query)
    context = {"d": answer.json() if answer.status_code == 200 else None}
    context["error"] = None if context["d"] else detail_of(answer)
    return render(request, "_dataset_diff.html", context, session=session)


def _patch_of(form, current: dict) -> dict[str, Any]:
    """The form as a PATCH body: only what changed; an emptied value clears (null)."""
    patch: dict[str, Any] = {}
    for key in BUSINESS:
        raw = str(form.get(key, "")).strip()
        if key == "tags":
            value: Any = [t.strip() for t in raw.replace("，", ",").split(",") if t.strip()] or None
        else:
            value = raw or None
        if value != (current.get(key) or None):
            patch[key] = value
    return patch


@router.post("/catalog/dataset/business")
async def edit_business(request: Request, session: Session = Depends(signed_in)) -> Response:
    """Save the business metadata form (PATCH; the API checks metadata:manage); answers the panel."""
    form = await request.form()
    urn = str(form.get("urn", ""))
    api = Backend(request, session.token)
    current = await api.get(_dataset_path(urn))
    error, saved = None, False
    if current.status_code != 200:
        error = detail_of(current)
        ds = None
    else:
        ds = current.json()
        patch = _patch_of(form, ds.get("business") or {})
        if patch:
            answer = await api.call("PATCH", _dataset_path(urn), json=patch)
            if answer.status_code == 200:
                ds, saved = answer.json(), True
            else:
                error = detail_of(answer)
        else:
            saved = True
    context = {
        "urn": urn,
        "ds": ds,
        "can_edit": session.can("metadata:manage"),
        "classifications": CLASSIFICATIONS,
        "saved": saved,
        "edit_error": error,
    }
    return render(request, "_dataset_business.html", context, session=session)


def _field_patch(form, fields: list[dict]) -> dict[str, dict[str, Any]]:
    """The per-field form (`class.<name>`, `desc.<name>`) as the PATCH's `fields`: changed ones only."""
    out: dict[str, dict[str, Any]] = {}
    for f in fields:
        name, business = f["name"], f.get("business") or {}
        entry: dict[str, Any] = {}
        for key, prefix in (("classification", "class."), ("description", "desc.")):
            if prefix + name not in form:
                continue
            value = str(form.get(prefix + name, "")).strip() or None
            if value != (business.get(key) or None):
                entry[key] = value
        if entry:
            out[name] = entry
    return out


@router.post("/catalog/dataset/fields")
async def edit_fields(request: Request, session: Session = Depends(signed_in)) -> Response:
    """Save the fields' classification and description (PATCH `fields`); back to the dataset page."""
    form = await request.form()
    urn = str(form.get("urn", ""))
    api = Backend(request, session.token)
    current = await api.get(_dataset_path(urn))
    if current.status_code != 200:
        context = {"urn": urn, "error": detail_of(current)}
        return render(request, "dataset.html", context, status_code=current.status_code, session=session)
    ds = current.json()
    patch = _field_patch(form, ds["fields"])
    if patch:
        answer = await api.call("PATCH", _dataset_path(urn), json={"fields": patch})
        if answer.status_code != 200:
            context = {
                "urn": urn,
                "ds": ds,
                "versions": await _versions(api, urn),
                "can_edit": session.can("metadata:manage"),
                "classifications": CLASSIFICATIONS,
                "fields_error": detail_of(answer),
            }
            return render(request, "dataset.html", context, status_code=answer.status_code, session=session)
    return RedirectResponse(f"{PATH}/catalog/dataset?urn={segment(urn)}&saved=fields#fields-h", status_code=303)


def _edge_label(transformation: dict, words) -> str:
    """An edge's OpenLineage subtype in the page's language (an unknown one, e.g. received from
    another tool, as it came), plus whether it masks."""
    subtype = transformation.get("subtype") or ""
    key = f"lineage.subtype.{subtype}"
    label = words.gettext(key) if subtype else ""
    label = subtype if label == key else label
    if transformation.get("masking"):
        label = f"{label} · {words.gettext('lineage.subtype.mask')}" if label else words.gettext("lineage.subtype.mask")
    return label


def _lineage_graph(lineage: dict, impact: dict | None, field: str | None = None, words=None) -> dict[str, Any]:
    """Nodes and edges for cytoscape; each node says which side of the root it is and whether a
    change of the root reaches it (the impact)."""
    root = lineage["root"]
    downstream = {root}
    upstream = {root}
    edges = lineage["edges"]
    changed = True
    while changed:  # sides, from the edges' directions
        changed = False
        for e in edges:
            if e["source"] in downstream and e["target"] not in downstream:
                downstream.add(e["target"])
                changed = True
            if e["target"] in upstream and e["source"] not in upstream:
                upstream.add(e["source"])
                changed = True
    fields: set[str] = set(impact["fields"]) if impact else set()
    datasets: set[str] = set(impact["datasets"]) if impact and not field else set()
    nodes = []
    for n in lineage["nodes"]:
        name = n.get("name") or n["dataset"].rsplit("/", 1)[-1]
        side = "root" if n["id"] == root else "down" if n["id"] in downstream else "up"
        nodes.append(
            {
                "id": n["id"],
                "label": f"{name}.{n['field']}" if n["field"] else name,
                "dataset": n["dataset"],
                "field": n["field"],
                "kind": n.get("kind") or "",
                "side": side,
                "impacted": n["hops"] > 0 and (n["id"] in fields or n["dataset"] in datasets),
            }
        )
    out_edges = []
    words = words or catalogue(DEFAULT)
    for e in edges:
        label = _edge_label(e.get("transformation") or {}, words)
        edge = {"from": e["source"], "to": e["target"], "label": label, "job": e["job"]}
        out_edges.append({**edge, "reported": bool(e.get("reported"))})  # imported from outside: drawn dashed
    return {"root": root, "nodes": nodes, "edges": out_edges}


@router.get("/catalog/lineage")
async def lineage_page(request: Request, session: Session = Depends(signed_in)) -> Response:
    params = request.query_params
    urn = params.get("urn", "")
    level = "field" if params.get("level") == "field" else "dataset"
    field = params.get("field") or None
    direction = params.get("direction") if params.get("direction") in ("upstream", "downstream") else "both"
    depth = params.get("depth") if (params.get("depth") or "").isdigit() else "3"
    api = Backend(request, session.token)
    ds = await api.get(_dataset_path(urn))
    context: dict[str, Any] = {"urn": urn, "level": level, "field": field, "direction": direction, "depth": depth}
    if ds.status_code != 200:
        context["error"] = detail_of(ds)
        return render(request, "lineage.html", context, status_code=ds.status_code, session=session)
    query = {"direction": direction, "depth": depth, "level": level, **({"field": field} if field else {})}
    lineage = await api.get(f"/lineage/{segment(urn)}", params=query)
    impact = await api.get(f"/impact/{segment(urn)}", params={"field": field} if field else {})
    context["ds"] = ds.json()
    if lineage.status_code != 200:
        context["error"] = detail_of(lineage)
        return render(request, "lineage.html", context, status_code=lineage.status_code, session=session)
    found = lineage.json()
    impacted = impact.json() if impact.status_code == 200 else None
    context.update(
        lineage=found,
        impact=impacted,
        impact_error=None if impacted else detail_of(impact),
        graph=graph_json(_lineage_graph(found, impacted, field, catalogue(language_of(request)))),
    )
    return render(request, "lineage.html", context, session=session)


def _map_graph(found: dict) -> dict[str, Any]:
    nodes = []
    for n in found["nodes"]:
        if n["kind"] == "system":
            label = f"{n['name']} ({n['datasets']})"
            href = "/console/catalog/map?system=" + segment(n["id"])
        else:
            label = n["name"]
            href = "/console/catalog/dataset?urn=" + segment(n["id"])
        # systems and the drilled-into system's datasets stand out; the datasets they exchange with do not
        own = n["kind"] == "system" or n.get("system") == found.get("system")
        side = "root" if own else "down"
        nodes.append({"id": n["id"], "label": label, "kind": n["kind"], "side": side, "href": href})
    edges = [
        {"from": e["source"], "to": e["target"], "label": str(e["flows"]) if "flows" in e else ""}
        for e in found["edges"]
    ]
    return {"nodes": nodes, "edges": edges}


def _assets_chart(summary: dict) -> dict[str, Any]:
    systems = summary.get("by_system", [])
    return {
        "categories": [s.get("name") or s["system"] for s in systems],
        "series": {k: [s[k] for s in systems] for k in ("datasets", "fields", "consumers")},
    }


@router.get("/catalog/map")
async def map_page(request: Request, session: Session = Depends(signed_in)) -> Response:
    system = request.query_params.get("system") or None
    api = Backend(request, session.token)
    found = await api.get("/map", params={"system": system} if system else {})
    summary = await api.get("/assets/summary")
    context: dict[str, Any] = {"system": system, "error": None}
    if found.status_code != 200:
        context["error"] = detail_of(found)
        return render(request, "catalog_map.html", context, status_code=found.status_code, session=session)
    context["map"] = found.json()
    context["graph"] = graph_json(_map_graph(found.json()))
    if summary.status_code == 200:
        context["summary"] = summary.json()
        context["chart"] = graph_json(_assets_chart(summary.json()))
    else:
        context["summary_error"] = detail_of(summary)
    return render(request, "catalog_map.html", context, session=session)
