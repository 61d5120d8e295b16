"""Lineage others report: edges posted as such (`POST /lineage/edges`) or OpenLineage RunEvents
(`POST /api/v1/lineage`, what Marquez receives), so the graph is not limited to Huiliu's own jobs.

Each reporting job's edges replace its earlier ones (origin `api:<job>` or `openlineage:<ns>/<job>`).
Datasets the catalogue does not hold yet are added (kind `external`, the fields the edges or the
event's schema facet name); a field named on a dataset the catalogue already holds must exist.

    job, edges = edges_from_request(EdgesIn)                  # BadLineage (-> 422) naming the item
    job, edges, datasets = edges_from_openlineage(event_dict)
    stored = record_edges(store, scope, origin, edges, datasets)
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from schemas.catalog.lineage import Edge, replace_edges
from schemas.catalog.model import DatasetInfo, FieldInfo, Harvest, SystemInfo
from schemas.catalog.store import CatalogStore, NotInCatalogue
from schemas.catalog.urns import BadUrn, dataset_urn, job_urn, parse_urn, system_urn

MAX_EDGES = 10_000
JOB_NAME = r"^[A-Za-z0-9][A-Za-z0-9_.\-/:]{0,199}$"


class BadLineage(ValueError):
    pass


class TransformationIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    type: Literal["DIRECT", "INDIRECT"] = "DIRECT"
    subtype: Literal[
        "IDENTITY", "TRANSFORMATION", "AGGREGATION", "FILTER", "JOIN", "GROUP_BY", "SORT", "WINDOW", "CONDITIONAL"
    ] = "IDENTITY"
    masking: bool = False
    description: str | None = Field(None, max_length=500)


class EdgeIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    source: str = Field(max_length=1000, description="a dataset URN")
    target: str = Field(max_length=1000, description="a dataset URN")
    source_field: str | None = Field(None, min_length=1, max_length=500)
    target_field: str | None = Field(None, min_length=1, max_length=500)
    transformation: TransformationIn | None = None


class EdgesIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    job: str = Field(pattern=JOB_NAME, description="the external job making these edges; its edges are replaced")
    edges: list[EdgeIn] = Field(max_length=MAX_EDGES)


def _dataset(urn: str, where: str) -> str:
    try:
        parsed = parse_urn(urn)
    except BadUrn as exc:
        raise BadLineage(f"{where}: {exc}") from None
    if parsed.kind != "dataset":
        raise BadLineage(f"{where}: a dataset URN is needed (hl:dataset:...)")
    return urn


def edges_from_request(body: EdgesIn) -> tuple[str, list[Edge], dict[str, list[str]]]:
    """(job URN, edges, {dataset urn: fields named}) of a POST /lineage/edges body."""
    job = job_urn(f"api/{body.job}")
    edges, named = [], {}
    for i, e in enumerate(body.edges):
        source, target = _dataset(e.source, f"edges[{i}].source"), _dataset(e.target, f"edges[{i}].target")
        if (e.source_field is None) != (e.target_field is None):
            raise BadLineage(f"edges[{i}]: give both source_field and target_field, or neither")
        t = e.transformation.model_dump(exclude_none=True) if e.transformation else None
        if e.source_field is not None:
            t = t or {"type": "DIRECT", "subtype": "IDENTITY", "masking": False}
            named.setdefault(source, []).append(e.source_field)
            named.setdefault(target, []).append(e.target_field)
        named.setdefault(source, [])
        named.setdefault(target, [])
        edges.append(Edge(job, source, target, e.source_field, e.target_field, t))
    return job, edges, named


def _ol_urn(item: Any, where: str) -> str:
    if (
        not isinstance(item, dict)
        or not isinstance(item.get("namespace"), str)
        or not isinstance(item.get("name"), str)
    ):
        raise BadLineage(f"{where}: a dataset is {{namespace, name}}")
    namespace, name = item["namespace"].rstrip("/"), item["name"].lstrip("/")
    if not name:
        raise BadLineage(f"{where}.name: must not be empty")
    return _dataset(dataset_urn(namespace, name), f"{where}.namespace")


def _schema_fields(item: dict) -> list[str]:
    schema = (item.get("facets") or {}).get("schema") or {}
    return [f["name"] for f in schema.get("fields") or [] if isinstance(f, dict) and isinstance(f.get("name"), str)]


def edges_from_openlineage(event: Any) -> tuple[str, list[Edge], dict[str, list[str]]]:
    """(job URN, edges, {dataset urn: fields}) of an OpenLineage RunEvent: every input feeds every
    output; an output's columnLineage facet gives the field edges with their transformations."""
    if not isinstance(event, dict):
        raise BadLineage("body: an OpenLineage RunEvent (an object)")
    job = event.get("job")
    if not isinstance(job, dict) or not all(isinstance(job.get(k), str) and job.get(k) for k in ("namespace", "name")):
        raise BadLineage("job: {namespace, name} is required")
    for key in ("inputs", "outputs"):
        if not isinstance(event.get(key, []), list):
            raise BadLineage(f"{key}: must be a list of datasets")
    job_id = job_urn(f"{job['namespace']}/{job['name']}"[:900])
    inputs = [_ol_urn(d, f"inputs[{i}]") for i, d in enumerate(event.get("inputs") or [])]
    outputs = [_ol_urn(d, f"outputs[{i}]") for i, d in enumerate(event.get("outputs") or [])]
    named: dict[str, list[str]] = {}
    for urn, item in zip(inputs + outputs, (event.get("inputs") or []) + (event.get("outputs") or []), strict=True):
        named.setdefault(urn, []).extend(_schema_fields(item))
    edges = [Edge(job_id, s, t) for s in inputs for t in outputs]
    for i, (urn, item) in enumerate(zip(outputs, event.get("outputs") or [], strict=True)):
        lineage = ((item.get("facets") or {}).get("columnLineage") or {}).get("fields") or {}
        if not isinstance(lineage, dict):
            raise BadLineage(f"outputs[{i}].facets.columnLineage.fields: must be an object")
        for out_field, spec in lineage.items():
            for j, src in enumerate((spec or {}).get("inputFields") or []):
                where = f"outputs[{i}].facets.columnLineage.fields.{out_field}.inputFields[{j}]"
                source = _ol_urn(src, where)
                if not isinstance(src.get("field"), str):
                    raise BadLineage(f"{where}.field: required")
                t = (src.get("transformations") or [{}])[0] or {}
                transformation = {
                    "type": t.get("type") or "DIRECT",
                    "subtype": t.get("subtype") or "IDENTITY",
                    "masking": bool(t.get("masking")),
                }
                named.setdefault(source, []).append(src["field"])
                named.setdefault(urn, []).append(out_field)
                edges.append(Edge(job_id, source, urn, src["field"], out_field, transformation))
    if len(edges) > MAX_EDGES:
        raise BadLineage(f"the event makes {len(edges)} edges; at most {MAX_EDGES}")
    return job_id, edges, named


def record_edges(
    store: CatalogStore, scope: str, origin: str, edges: list[Edge], named: dict[str, list[str]]
) -> dict[str, Any]:
    """Add the datasets not yet catalogued, check named fields of known ones, replace the edges."""
    known, new = {}, {}
    for urn, fields in named.items():
        try:
            known[urn] = {f["name"] for f in store.dataset({scope}, urn)["fields"]}
        except NotInCatalogue:
            new[urn] = list(dict.fromkeys(fields))
            continue
        missing = sorted(set(fields) - known[urn])
        if missing and known[urn]:  # a dataset harvested without fields (no subject yet) takes any
            raise BadLineage(f"dataset {urn} has no field {', '.join(missing[:5])}")
    systems = {s["urn"]: s for s in store.systems({scope})}
    by_namespace: dict[str, list[DatasetInfo]] = {}
    for urn, fields in new.items():
        u = parse_urn(urn)
        info = [FieldInfo(name=f, type="unknown", position=i + 1) for i, f in enumerate(fields)]
        by_namespace.setdefault(u.namespace, []).append(DatasetInfo(urn, u.name, "external", info))
    for namespace, datasets in by_namespace.items():
        surn = system_urn(namespace)
        found = systems.get(surn)
        system = SystemInfo(
            surn,
            found["name"] if found else namespace,
            found["kind"] if found else namespace.split(":", 1)[0],
            found["properties"] if found else {"namespace": namespace, "reported": True},
        )
        store.record(Harvest(system, datasets), scope)
    replace_edges(store.engine, scope, origin, edges)
    return {"edges": len(edges), "new_datasets": sorted(new)}
