"""Catalogue fields mapped to data elements (issue 16): by hand or by accepting a suggestion from
name/comment similarity or from sampled values (a person confirms either way), and conformance (mapped ratio) per dataset
and per system. Fields are named by the catalogue's field URN `<dataset URN>#<field>`."""

from __future__ import annotations

from typing import Any, Literal

from fastapi import APIRouter, Depends, HTTPException, Query, Request
from pydantic import BaseModel, Field

from api.audit import audit_as
from api.security import Principal, require
from api.standards import http_error, mapping_store, scope_of, standards_store
from api.standards.catalogue import dataset_of, datasets_of_system
from api.standards.sync import after_change, value_checks
from api.standards.value_evidence import suggest_from_values
from quality_stream.governance.mappings import conformance, split_field_urn
from quality_stream.governance.model import CODE_PATTERN, StandardsError
from quality_stream.governance.suggest import suggest
from quality_stream.governance.value_fit import merge_suggestions

router = APIRouter(tags=["standards"])
VIEW = require("standards:view")
MANAGE = require("standards:manage")
URN_MAX = 1600


class Mapping(BaseModel):
    model_config = {"extra": "forbid"}
    field_urn: str = Field(max_length=URN_MAX, description="<dataset URN>#<field>")
    element: str = Field(pattern=CODE_PATTERN, description="the data element's code")
    method: Literal["manual", "suggested"] = "manual"
    score: float | None = Field(None, ge=0, le=1, description="the accepted suggestion's score")


def _field(request: Request, principal: Principal, field_urn: str) -> tuple[str, str]:
    try:
        dataset, field = split_field_urn(field_urn)
    except StandardsError as exc:
        raise http_error(exc) from None
    fields = [f["name"] for f in dataset_of(request, principal, dataset, "field_urn")["fields"]]
    if field not in fields:
        raise HTTPException(
            422, f"field_urn: the dataset has no field {field[:200]!r} / 数据集没有字段 {field[:200]!r}"
        )
    return dataset, field


@router.get("/standards/mappings", summary="Field -> element mappings (?dataset= a dataset URN, ?element= a code)")
def mappings(
    request: Request,
    dataset: str | None = Query(None, max_length=1000),
    element: str | None = Query(None, pattern=CODE_PATTERN),
    principal: Principal = Depends(VIEW),
) -> list[dict]:
    if dataset:
        dataset_of(request, principal, dataset)
    return mapping_store(request.app.state.settings).list(scope_of(principal), dataset, element)


@router.post("/standards/mappings", summary="Map a catalogue field to a data element (replaces its mapping)")
def put_mapping(request: Request, body: Mapping, principal: Principal = Depends(MANAGE)) -> dict:
    audit_as(request, "standards.mapping.put", field_urn=body.field_urn[:400], element=body.element, method=body.method)
    dataset, field = _field(request, principal, body.field_urn)
    scope = scope_of(principal)
    settings = request.app.state.settings
    if not standards_store(settings).exists(scope, "element", body.element):
        raise HTTPException(422, f"element: no data element {body.element!r} / 没有数据元 {body.element!r}")
    mapped = mapping_store(settings).put(scope, dataset, field, body.element, body.method, body.score, principal.name)
    mapped["pipelines"] = after_change(request, scope, principal, f"{body.field_urn[-200:]} mapped to {body.element}")
    return mapped


@router.delete("/standards/mappings", summary="Remove a field's mapping (?field_urn=)")
def remove_mapping(
    request: Request, field_urn: str = Query(max_length=URN_MAX), principal: Principal = Depends(MANAGE)
) -> dict:
    audit_as(request, "standards.mapping.remove", field_urn=field_urn[:400])
    dataset, field = _field(request, principal, field_urn)
    scope = scope_of(principal)
    removed = mapping_store(request.app.state.settings).remove(scope, dataset, field)
    if removed is None:
        raise HTTPException(404, "the field has no mapping / 该字段没有映射")
    removed["pipelines"] = after_change(request, scope, principal, f"{field_urn[-200:]} unmapped")
    return removed


@router.get(
    "/standards/suggestions",
    summary="Suggested elements for a dataset's unmapped fields, from name and comment similarity and, with "
    "?values=true, from a sample of a ClickHouse table's values (code set, format, length, type), each with its "
    "evidence (confirm by POST /standards/mappings)",
)
def suggestions(
    request: Request,
    dataset: str = Query(max_length=1000),
    min_score: float = Query(0.7, ge=0, le=1),
    limit: int = Query(3, ge=1, le=20),
    values: bool = Query(False, description="also sample the table's values (ClickHouse datasets)"),
    sample: int = Query(1000, ge=20, le=100_000, description="rows sampled for the value evidence"),
    principal: Principal = Depends(VIEW),
) -> dict[str, Any]:
    ds = dataset_of(request, principal, dataset)
    settings, scope = request.app.state.settings, scope_of(principal)
    mapped = {m["field"] for m in mapping_store(settings).list(scope, dataset)}
    _, elements = standards_store(settings).items(scope, "element", limit=100_000)
    candidates = [e for e in elements if e["status"] != "retired"]
    fields = [f for f in ds["fields"] if f["name"] not in mapped]
    found = suggest(fields, candidates, limit, min_score)
    if values:
        names = [f["name"] for f in fields]
        by_values = suggest_from_values(settings, scope, dataset, names, candidates, sample, limit, min_score)
        found = merge_suggestions(found, by_values, limit)
    return {
        "dataset": dataset,
        "fields": [
            {"field_urn": f"{dataset}#{f['name']}", "field": f["name"], "suggestions": found[f["name"]]} for f in fields
        ],
    }


@router.get(
    "/standards/conformance",
    summary="Mapped ratio per dataset (?dataset=) or for every dataset of ?system=, and values passing the rules",
)
def conformance_of(
    request: Request,
    dataset: str | None = Query(None, max_length=1000),
    system: str | None = Query(None, max_length=1000),
    principal: Principal = Depends(VIEW),
) -> dict[str, Any]:
    if bool(dataset) == bool(system):
        raise HTTPException(422, "name exactly one of dataset and system / 请指定 dataset 或 system 之一")
    urns = [dataset] if dataset else datasets_of_system(request, principal, system)
    store, scope = mapping_store(request.app.state.settings), scope_of(principal)
    per_dataset = []
    for urn in urns:
        fields = [f["name"] for f in dataset_of(request, principal, urn)["fields"]]
        mapped = store.list(scope, urn)
        values = value_checks(request.app.state.settings, principal, urn, [m["element"] for m in mapped])
        per_dataset.append({"dataset": urn, **conformance(fields, mapped), "values": values})
    total = sum(d["fields"] for d in per_dataset)
    mapped = sum(d["mapped"] for d in per_dataset)
    return {
        "fields": total,
        "mapped": mapped,
        "ratio": round(mapped / total, 4) if total else None,
        "datasets": per_dataset,
    }
