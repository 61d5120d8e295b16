"""The metadata catalogue (issue 15): harvest, datasets, versions and diffs, business metadata.
Thin: the domain is schemas/catalog, the wiring api/metadata. URNs are path parameters with their
slashes (`/metadata/datasets/hl:dataset:postgres://h:5432/db.s.t/versions`)."""

from __future__ import annotations

from typing import Any, Literal

from fastapi import APIRouter, Body, Depends, HTTPException, Path, Query, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import FileResponse, Response
from pydantic import BaseModel, Field, ValidationError

from api.audit import audit_as
from api.audit.affected import note_affected_tenant
from api.jobs import job_manager
from api.metadata import catalog_store, scopes_of
from api.metadata.harvest import harvest_job, harvest_targets
from api.metadata.impact_export import JOB_TYPE as EXPORT_JOB
from api.metadata.impact_export import export_file, impact_export_job
from api.metadata.quality import daily_events, dataset_stats, runner_counts
from api.security import Principal, require
from deploy.logs import in_tenant
from schemas.catalog import BadUrn, NoSuchVersion, NotInCatalogue, parse_urn
from schemas.catalog.assets import data_map, summary
from schemas.catalog.business import BusinessPatch
from schemas.catalog.impact import csv_text, impact_table
from schemas.catalog.impact import impact as impact_of
from schemas.catalog.lineage import MAX_NODES, REPORTED, traverse
from schemas.catalog.received import (
    JOB_NAME,
    BadLineage,
    EdgesIn,
    edges_from_openlineage,
    edges_from_request,
    record_edges,
)
from schemas.catalog.reported import note_report, reports
from schemas.catalog.search import BadQuery, search
from schemas.catalog.store import scope_of
from streams.flink.lineage import flink_edges, job_config

router = APIRouter(tags=["metadata"])
VIEW = require("metadata:view")
MANAGE = require("metadata:manage")
UrnPath = Path(max_length=1000, description="a catalogue URN, e.g. hl:dataset:postgres://host:5432/db.schema.table")
NOT_FOUND = "no such dataset in the catalogue"


class HarvestRequest(BaseModel):
    model_config = {"extra": "forbid"}

    connectors: list[str] | None = Field(
        None, max_length=1000, description="connectors to harvest (default: every connector you may see)"
    )


def _settings(request: Request):
    return request.app.state.settings


def _urn(urn: str, kind: str = "dataset") -> str:
    try:
        parsed = parse_urn(urn)
    except BadUrn as exc:
        raise HTTPException(422, f"urn: {exc}") from None
    if parsed.kind != kind:
        raise HTTPException(422, f"urn: a {kind} URN is needed here (hl:{kind}:...)")
    return urn


def _missing(request: Request, principal: Principal, urn: str) -> HTTPException:
    """404 whether the dataset is unknown or another tenant's; the attacked tenant sees the attempt."""
    scopes = scopes_of(principal)
    owner = catalog_store(_settings(request)).owner(urn)
    if owner and scopes is not None and owner not in scopes:
        note_affected_tenant(request, owner)
    return HTTPException(404, NOT_FOUND)


@router.post(
    "/metadata/harvest", status_code=202, summary="Harvest connectors' sources, topics and sink tables (a job)"
)
def harvest(
    request: Request,
    body: HarvestRequest = Body(default_factory=HarvestRequest),
    principal: Principal = Depends(MANAGE),
) -> dict[str, Any]:
    audit_as(request, "metadata.harvest", connectors=body.connectors)
    settings = _settings(request)
    try:
        targets = harvest_targets(settings, scopes_of(principal), body.connectors)
    except LookupError as exc:
        raise HTTPException(404, str(exc)) from None
    if not targets:
        raise HTTPException(422, "connectors: none of your connectors has anything to harvest")
    tenant = principal.tenant if not principal.all_tenants else None
    job_id = job_manager(request.app).submit(
        "metadata.harvest", principal.name, in_tenant(tenant, harvest_job(settings, targets))
    )
    request.state.audit_detail["job"] = job_id
    return {"job_id": job_id, "connectors": [t.connector for t in targets]}


@router.get("/metadata/systems", summary="Systems (data sources, the broker, sink databases) in the catalogue")
async def systems(request: Request, principal: Principal = Depends(VIEW)) -> list[dict[str, Any]]:
    return await run_in_threadpool(catalog_store(_settings(request)).systems, scopes_of(principal))


@router.get("/metadata/datasets", summary="Datasets (tables, views, topics, sink tables), filtered by system or kind")
async def datasets(
    request: Request,
    system: str | None = Query(None, max_length=1000, description="a system URN"),
    kind: str | None = Query(None, pattern="^(table|view|topic|sink_table|files)$"),
    limit: int = Query(100, ge=1, le=1000),
    offset: int = Query(0, ge=0, le=10_000_000),
    principal: Principal = Depends(VIEW),
) -> dict[str, Any]:
    if system:
        _urn(system, "system")
    store = catalog_store(_settings(request))
    total, items = await run_in_threadpool(store.datasets, scopes_of(principal), system, kind, limit, offset)
    return {"total": total, "items": items}


@router.get(
    "/metadata/search", summary="Search systems, datasets and fields (Chinese and English), ranked, with facets"
)
async def search_catalogue(
    request: Request,
    q: str = Query(max_length=200, description="words that must all occur: names, comments, descriptions, tags"),
    kind: str | None = Query(None, pattern="^(system|dataset|field)$"),
    system: str | None = Query(None, max_length=1000, description="a system URN"),
    limit: int = Query(20, ge=1, le=200),
    offset: int = Query(0, ge=0, le=1000),
    principal: Principal = Depends(VIEW),
) -> dict[str, Any]:
    if system:
        _urn(system, "system")
    engine = catalog_store(_settings(request)).engine
    try:
        return await run_in_threadpool(search, engine, scopes_of(principal), q, kind, system, limit, offset)
    except BadQuery as exc:
        raise HTTPException(422, str(exc)) from None


async def _read(request: Request, principal: Principal, urn: str, method: str, *args) -> Any:
    """The catalogue store's `method` for the caller's scopes on `urn`; an unknown (or another
    tenant's) URN or version answers 404."""
    store = catalog_store(_settings(request))
    try:
        return await run_in_threadpool(getattr(store, method), scopes_of(principal), _urn(urn), *args)
    except NotInCatalogue:
        raise _missing(request, principal, urn) from None
    except NoSuchVersion as exc:
        raise HTTPException(404, str(exc)) from None


@router.get("/metadata/datasets/{urn:path}/versions/{version}", summary="One version of a dataset: its shape and diff")
async def dataset_version(
    request: Request, urn: str = UrnPath, version: int = Path(ge=1), principal: Principal = Depends(VIEW)
) -> dict[str, Any]:
    return await _read(request, principal, urn, "version", version)


@router.get("/metadata/datasets/{urn:path}/versions", summary="A dataset's versions, newest first")
async def dataset_versions(request: Request, urn: str = UrnPath, principal: Principal = Depends(VIEW)) -> list[dict]:
    return await _read(request, principal, urn, "versions")


@router.get("/metadata/datasets/{urn:path}/diff", summary="What changed between two versions (?from=&to=)")
async def dataset_diff(
    request: Request,
    urn: str = UrnPath,
    from_: int = Query(alias="from", ge=1),
    to: int = Query(ge=1),
    principal: Principal = Depends(VIEW),
) -> dict[str, Any]:
    return await _read(request, principal, urn, "diff", from_, to)


@router.get("/metadata/datasets/{urn:path}", summary="A dataset: fields, properties, business metadata")
async def dataset(request: Request, urn: str = UrnPath, principal: Principal = Depends(VIEW)) -> dict[str, Any]:
    found = await _read(request, principal, urn, "dataset")
    found["stats"] = await run_in_threadpool(dataset_stats, _settings(request), scopes_of(principal), found)
    return found


@router.patch("/metadata/datasets/{urn:path}", summary="Edit business metadata (only the keys sent; null clears)")
async def edit_dataset(
    request: Request,
    urn: str = UrnPath,
    body: dict[str, Any] = Body(...),
    principal: Principal = Depends(MANAGE),
) -> dict[str, Any]:
    audit_as(request, "metadata.update", urn=urn[:300], keys=sorted(body)[:20] if isinstance(body, dict) else [])
    _urn(urn)
    try:
        patch = BusinessPatch.model_validate(body)
    except ValidationError as exc:
        problems = "; ".join(f"{'.'.join(str(p) for p in e['loc'])}: {e['msg']}" for e in exc.errors()[:10])
        raise HTTPException(422, f"invalid business metadata: {problems}") from None
    store = catalog_store(_settings(request))
    try:
        return await run_in_threadpool(store.update_business, scopes_of(principal), urn, patch)
    except NotInCatalogue:
        raise _missing(request, principal, urn) from None
    except ValueError as exc:
        raise HTTPException(422, str(exc)[:500]) from None


@router.get("/lineage/{urn:path}", summary="Lineage graph of a dataset (nodes, edges; bounded, says when partial)")
async def lineage(
    request: Request,
    urn: str = UrnPath,
    direction: str = Query("both", pattern="^(upstream|downstream|both)$"),
    depth: int = Query(3, ge=1, le=20),
    level: str = Query("dataset", pattern="^(dataset|field)$"),
    field: str | None = Query(None, max_length=500),
    principal: Principal = Depends(VIEW),
) -> dict[str, Any]:
    store = catalog_store(_settings(request))
    scopes = scopes_of(principal)
    try:
        await run_in_threadpool(store.dataset, scopes, _urn(urn))
    except NotInCatalogue:
        raise _missing(request, principal, urn) from None
    return await run_in_threadpool(traverse, store.engine, scopes, urn, direction, depth, level, field)


class ImpactExport(BaseModel):
    model_config = {"extra": "forbid"}

    urn: str = Field(max_length=1000, description="the dataset whose change or removal is weighed")
    field: str | None = Field(None, max_length=500, description="one of its fields (default: the whole dataset)")
    depth: int = Field(10, ge=1, le=20)
    lang: Literal["zh", "en"] = Field("zh", description="language of the CSV header")


@router.post(
    "/impact-exports",
    status_code=202,
    summary="Export an impact list as CSV, as a job (for graphs too big for one answer); fetch it when done",
)
async def export_impact(request: Request, body: ImpactExport, principal: Principal = Depends(VIEW)) -> dict[str, Any]:
    settings, scopes = _settings(request), scopes_of(principal)
    try:
        await run_in_threadpool(catalog_store(settings).dataset, scopes, _urn(body.urn))
    except NotInCatalogue:
        raise _missing(request, principal, body.urn) from None
    audit_as(request, "metadata.impact_export", urn=body.urn, field=body.field)
    job = impact_export_job(settings, scopes, body.urn, body.field, body.depth, body.lang)
    job_id = await run_in_threadpool(job_manager(request.app).submit, EXPORT_JOB, principal.name, job)
    return {"job_id": job_id, "download": f"/impact-exports/{job_id}"}


@router.get("/impact-exports/{job_id}", summary="The CSV an impact export job wrote (its operator only)")
async def impact_export_file(
    request: Request, job_id: str = Path(max_length=100), principal: Principal = Depends(VIEW)
):
    job = await run_in_threadpool(job_manager(request.app).get, job_id)
    if job is None or job["type"] != EXPORT_JOB or not (principal.superuser or job["operator"] == principal.name):
        raise HTTPException(404, f"no impact export {job_id!r}")
    path = export_file(_settings(request), job_id)
    if job["state"] != "succeeded" or not path.exists():
        raise HTTPException(409, f"impact export {job_id} is {job['state']}, no file yet (GET /jobs/{job_id})")
    return FileResponse(path, media_type="text/csv; charset=utf-8", filename=f"impact-{job_id}.csv")


@router.get(
    "/impact/{urn:path}", summary="What is downstream of a dataset or one field: datasets, fields, jobs, owners"
)
async def impact(
    request: Request,
    urn: str = UrnPath,
    field: str | None = Query(None, max_length=500),
    depth: int = Query(10, ge=1, le=20),
    format: Literal["json", "csv"] = Query("json", description="csv: one row per affected dataset or field"),
    lang: Literal["zh", "en"] = Query("zh", description="language of the CSV header"),
    principal: Principal = Depends(VIEW),
):
    store = catalog_store(_settings(request))
    scopes = scopes_of(principal)
    try:
        await run_in_threadpool(store.dataset, scopes, _urn(urn))
    except NotInCatalogue:
        raise _missing(request, principal, urn) from None
    if format == "json":
        return await run_in_threadpool(impact_of, store.engine, scopes, urn, field, depth)
    header, rows, partial = await run_in_threadpool(
        impact_table, store.engine, scopes, urn, field, depth, lang, MAX_NODES
    )
    # bounded like the JSON answer; X-Partial says so, and POST /impact-exports follows the rest
    headers = {"X-Partial": "true" if partial else "false", "Content-Disposition": 'attachment; filename="impact.csv"'}
    return Response(csv_text(header, rows), media_type="text/csv; charset=utf-8", headers=headers)


def _home_scope(principal: Principal) -> str:
    """Where reported lineage is kept: the caller's tenant ("" for all-tenant callers)."""
    return scope_of(principal.tenant if not principal.all_tenants else None)


def _record(request: Request, principal: Principal, origin: str, parsed, producer: str | None = None) -> dict[str, Any]:
    job, edges, named = parsed
    store = catalog_store(_settings(request))
    scope = _home_scope(principal)
    try:
        stored = record_edges(store, scope, origin, edges, named)
    except BadLineage as exc:
        raise HTTPException(422, str(exc)[:1000]) from None
    if origin.startswith(REPORTED):  # lineage from outside: who reported it and when, for the console
        note_report(store.engine, scope, origin, job, producer, principal.name, stored["edges"])
    request.state.audit_detail.update(job=job[:300], edges=stored["edges"])
    return {"job": job, **stored}


@router.post("/lineage/edges", summary="Report lineage edges of an external job (they replace its earlier ones)")
def post_edges(request: Request, body: EdgesIn, principal: Principal = Depends(MANAGE)) -> dict[str, Any]:
    audit_as(request, "lineage.report", job=body.job)
    try:
        parsed = edges_from_request(body)
    except BadLineage as exc:
        raise HTTPException(422, str(exc)[:1000]) from None
    return _record(request, principal, f"api:{body.job}", parsed)


class FlinkJobIn(BaseModel):
    model_config = {"extra": "forbid"}

    name: str = Field(pattern=JOB_NAME, description="the Flink job's name; its lineage replaces the earlier one")
    config: dict[str, Any] | str = Field(
        description="the job's config (streams/flink/job.py), as an object or YAML text"
    )


@router.post(
    "/lineage/flink-jobs",
    summary="Lineage of a PyFlink job read off its config (dedupe, metrics, joins; replaces its earlier edges)",
)
def post_flink_job(request: Request, body: FlinkJobIn, principal: Principal = Depends(MANAGE)) -> dict[str, Any]:
    audit_as(request, "lineage.flink", job=body.name)
    scope = _home_scope(principal)
    store = catalog_store(_settings(request))
    try:
        parsed = flink_edges(body.name, job_config(body.config), lambda urn: _field_names(store, scope, urn))
    except BadLineage as exc:
        raise HTTPException(422, str(exc)[:1000]) from None
    return _record(request, principal, f"flink:{body.name}", parsed)


def _field_names(store, scope: str, urn: str) -> list[str]:
    try:
        return [f["name"] for f in store.dataset({scope}, urn)["fields"]]
    except NotInCatalogue:
        return []


@router.post(
    "/api/v1/lineage", summary="Receive an OpenLineage RunEvent (as Marquez does); its lineage joins the graph"
)
def receive_openlineage(
    request: Request, event: dict[str, Any] = Body(...), principal: Principal = Depends(MANAGE)
) -> dict[str, Any]:
    audit_as(request, "lineage.openlineage", event_type=str(event.get("eventType"))[:20])
    try:
        parsed = edges_from_openlineage(event)
    except BadLineage as exc:
        raise HTTPException(422, str(exc)[:1000]) from None
    job = event["job"]
    if not parsed[1]:  # START events often carry no datasets: nothing to replace
        return {"job": parsed[0], "edges": 0, "new_datasets": []}
    producer = event.get("producer") if isinstance(event.get("producer"), str) else None
    return _record(request, principal, f"openlineage:{job['namespace']}/{job['name']}"[:300], parsed, producer)


@router.get("/lineage-reports", summary="Lineage reported from outside: each job with its producer, time and flows")
async def lineage_reports(request: Request, principal: Principal = Depends(VIEW)) -> list[dict[str, Any]]:
    engine = catalog_store(_settings(request)).engine
    return await run_in_threadpool(reports, engine, scopes_of(principal))


@router.get("/assets/summary", summary="Asset totals per system, department and classification level")
async def assets_summary(request: Request, principal: Principal = Depends(VIEW)) -> dict[str, Any]:
    settings = _settings(request)
    scopes = scopes_of(principal)
    quality = await run_in_threadpool(runner_counts, settings, scopes)
    daily = await run_in_threadpool(daily_events, settings, scopes)
    return await run_in_threadpool(summary, catalog_store(settings).engine, scopes, quality, daily)


@router.get("/map", summary="Data map: systems and the flows between them; ?system= drills down to its datasets")
async def map_(
    request: Request,
    system: str | None = Query(None, max_length=1000, description="a system URN: its datasets and their flows"),
    principal: Principal = Depends(VIEW),
) -> dict[str, Any]:
    if system:
        _urn(system, "system")
    engine = catalog_store(_settings(request)).engine
    return await run_in_threadpool(data_map, engine, scopes_of(principal), system)
