"""Sensitive-data detection (issue 17): scan a catalogue dataset's samples, confirm the proposals.
Thin: the domain is streams/sensitive (validators, detector, samplers, the catalogue patch);
the catalogue is written through its store's business-metadata update, as PATCH /metadata/datasets
does, so every service masking by classification applies the confirmed level on its next call.

    POST /detection/scan     {dataset, fields?, limit?}   -> findings with evidence, fields found clear
    POST /detection/confirm  {dataset, fields: {name: {classification, kind?}}}  -> the dataset's fields

Both need `metadata:manage` (stewards: a scan reads the data); datasets are the caller's tenants' only.
"""

from __future__ import annotations

from typing import Any, Literal

from fastapi import APIRouter, Depends, HTTPException, Request
from fastapi.concurrency import run_in_threadpool
from pydantic import BaseModel, Field

from api.audit import audit_as
from api.audit.affected import note_affected_tenant
from api.metadata import catalog_store, scopes_of
from api.security import Principal, require
from schemas.catalog import BadUrn, NotInCatalogue, parse_urn
from schemas.catalog.business import CLASSIFICATIONS, BusinessPatch
from streams.sensitive import KINDS
from streams.sensitive.catalog import confirmation_patch, sample_source
from streams.sensitive.scan import sample_clickhouse, sample_topic, scan

router = APIRouter(tags=["metadata"])
MANAGE = require("metadata:manage")
NOT_FOUND = {"message": "no such dataset in the catalogue", "message_zh": "数据目录中没有该数据集"}


class ScanRequest(BaseModel):
    model_config = {"extra": "forbid"}
    dataset: str = Field(min_length=1, max_length=1000, description="the dataset's catalogue URN")
    fields: list[str] | None = Field(None, min_length=1, max_length=500, description="default: every field")
    limit: int = Field(1000, ge=10, le=10_000, description="rows (or messages) sampled")


class Confirmed(BaseModel):
    model_config = {"extra": "forbid"}
    classification: Literal[CLASSIFICATIONS]  # type: ignore[valid-type]
    kind: Literal[tuple(KINDS)] | None = None  # type: ignore[valid-type]


class ConfirmRequest(BaseModel):
    model_config = {"extra": "forbid"}
    dataset: str = Field(min_length=1, max_length=1000)
    fields: dict[str, Confirmed] = Field(min_length=1, max_length=500)


def _dataset(request: Request, principal: Principal, urn: str) -> dict[str, Any]:
    store = catalog_store(request.app.state.settings)
    try:
        parse_urn(urn)
        return store.dataset(scopes_of(principal), urn)
    except NotInCatalogue:
        owner = store.owner(urn)
        if owner:
            note_affected_tenant(request, owner)
        raise HTTPException(404, NOT_FOUND) from None
    except (BadUrn, ValueError) as exc:
        raise HTTPException(422, {"message": f"dataset: {exc}", "message_zh": "数据集标识（URN）格式有误"}) from None


def _samples(settings, source: tuple[str, str], fields: list[str], limit: int) -> dict[str, list]:
    kind, name = source
    if kind == "clickhouse":
        from sinks.clickhouse import client_from_url

        client = client_from_url(settings.clickhouse_url)
        try:
            return sample_clickhouse(client, name, fields, limit)
        finally:
            client.disconnect()
    samples = sample_topic(settings.kafka_bootstrap, settings.schema_registry_url, name, limit)
    return {f: samples.get(f, []) for f in fields}


@router.post("/detection/scan", summary="Scan a dataset's samples for personal and sensitive data (proposals)")
def scan_dataset(request: Request, body: ScanRequest, principal: Principal = Depends(MANAGE)) -> dict[str, Any]:
    audit_as(request, "detection.scan", dataset=body.dataset[:300])
    dataset = _dataset(request, principal, body.dataset)
    settings = request.app.state.settings
    known = [f["name"] for f in dataset["fields"]]
    fields = body.fields or known
    unknown = [f for f in fields if f not in known]
    if unknown:
        raise HTTPException(
            422,
            {
                "message": f"fields: the dataset has no field {unknown[:10]}",
                "message_zh": f"数据集没有字段 {unknown[:10]}",
            },
        )
    source = sample_source(body.dataset, settings.clickhouse_url, settings.kafka_bootstrap)
    if source is None:
        raise HTTPException(
            422,
            {
                "message": "only this platform's ClickHouse tables and topics can be sampled",
                "message_zh": "只能抽样本平台的 ClickHouse 表和数据主题",
            },
        )
    try:
        samples = _samples(settings, source, fields, body.limit)
    except LookupError as exc:
        raise HTTPException(409, {"message": str(exc), "message_zh": "数据主题不存在"}) from None
    except Exception as exc:  # the store not answering (or the table gone): 503, never 500
        from clickhouse_driver.errors import Error as ClickHouseError

        if isinstance(exc, ClickHouseError | OSError | EOFError):
            raise HTTPException(
                503, {"message": "the data store is not answering", "message_zh": "数据存储暂不可用"}
            ) from None
        raise
    out = scan(samples)
    current = {f["name"]: f.get("business", {}).get("classification") for f in dataset["fields"]}
    for finding in out["findings"]:
        finding["current_classification"] = current.get(finding["field"])
    request.state.audit_detail.update(found={f["field"]: f["kind"] for f in out["findings"]})
    return {"dataset": body.dataset, "source": source[0], **out}


@router.post("/detection/confirm", summary="Confirm findings: the fields' classification in the catalogue")
async def confirm(request: Request, body: ConfirmRequest, principal: Principal = Depends(MANAGE)) -> dict[str, Any]:
    audit_as(
        request,
        "detection.confirm",
        dataset=body.dataset[:300],
        fields={k: v.classification for k, v in list(body.fields.items())[:50]},
    )
    dataset = await run_in_threadpool(_dataset, request, principal, body.dataset)
    try:
        patch = confirmation_patch(dataset, {k: v.model_dump() for k, v in body.fields.items()})
    except ValueError as exc:
        raise HTTPException(422, {"message": f"fields: {exc}", "message_zh": f"字段有误：{exc}"}) from None
    store = catalog_store(request.app.state.settings)
    try:
        updated = await run_in_threadpool(
            store.update_business, scopes_of(principal), body.dataset, BusinessPatch.model_validate(patch)
        )
    except NotInCatalogue:
        raise HTTPException(404, NOT_FOUND) from None
    return {
        "dataset": body.dataset,
        "fields": [
            {"name": f["name"], **{k: f["business"].get(k) for k in ("classification", "tags")}}
            for f in updated["fields"]
            if f["name"] in body.fields
        ],
    }
