"""Topics (issue 18, the console's topic browser): list with partitions and end offsets, one topic
with its registry subject's versions, the difference of two schema versions, and a page of one
partition's messages decoded from Avro and masked for the caller.

Thin: the domain is streams/topics_browse.py; end offsets are api/lag.end_offsets (tail read,
tansu's high watermark is wrong). A tenant's caller sees the topics of its tenants' connectors and
pipelines only (another's answers 404 as an unknown one); all-tenant callers see every topic.
Values: "****" without `data:view`; with it, fields the catalogue classifies secret/sensitive masked."""

from __future__ import annotations

from typing import Any

import httpx
from fastapi import APIRouter, Depends, HTTPException, Path, Query, Request
from fastapi.concurrency import run_in_threadpool

from api.audit import audit_as
from api.lag import end_offsets
from api.metadata import catalog_store
from api.pipelines.store import pipeline_store_for
from api.scoping import connector_store
from api.security import Principal, require
from connectors.tenant_topics import topics_of
from schemas.catalog.urns import topic_urn
from streams.topics_browse import (
    ALL_MASK,
    NoSuchVersion,
    masked_value,
    partitions,
    read_messages,
    schema_diff,
    schema_version,
    subject_versions,
)

router = APIRouter(tags=["topics"])
VIEW = require("ops:view")
TopicName = Path(max_length=249, pattern=r"^[A-Za-z0-9._\-]+$", description="a topic name")


def _settings(request: Request):
    return request.app.state.settings


def _visible(settings, principal: Principal) -> set[str] | None:
    """The topic names the caller may see (None: every topic)."""
    tenants = principal.visible_tenants()
    if tenants is None:
        return None
    store = pipeline_store_for(settings)
    documents = store.current_documents(tenants)
    return topics_of(connector_store(settings).all(tenants), documents, settings)


def _missing(name: str) -> HTTPException:
    return HTTPException(404, f"no topic {name!r} / 没有主题 {name!r}")


def _registry_down(exc: Exception) -> HTTPException:
    return HTTPException(503, f"the schema registry did not answer ({type(exc).__name__}) / 模式注册中心无响应")


def _partitions_of(settings, principal: Principal, name: str) -> list[int]:
    visible = _visible(settings, principal)
    found = partitions(settings.kafka_bootstrap).get(name)
    if found is None or (visible is not None and name not in visible):
        raise _missing(name)
    return found


def _rows(settings, topics: dict[str, list[int]], budget: float) -> dict[str, list[dict[str, Any]]]:
    wanted = [(t, p) for t, parts in topics.items() for p in parts]
    ends = end_offsets(settings.kafka_bootstrap, wanted, budget) if wanted else {}
    out: dict[str, list[dict[str, Any]]] = {}
    for (topic, part), (low, end, method) in sorted(ends.items()):
        out.setdefault(topic, []).append({"partition": part, "start": low, "end": end, "method": method})
    return out


def _list(
    settings, principal: Principal, q: str | None, budget: float, limit: int | None = None, offset: int = 0
) -> dict[str, Any]:
    """Topics by name; with `limit`, only that page's end offsets are read (the tail reads are the
    cost of this list, so a tenant with many topics pays for one page)."""
    visible = _visible(settings, principal)
    topics = {
        name: parts
        for name, parts in partitions(settings.kafka_bootstrap, budget).items()
        if (visible is None or name in visible) and (not q or q.lower() in name.lower())
    }
    names = sorted(topics)
    page = names[offset : offset + limit] if limit else names[offset:]
    rows = _rows(settings, {name: topics[name] for name in page}, budget)
    items = [
        {
            "name": name,
            "partitions": rows.get(name, []),
            "messages": sum(p["end"] - p["start"] for p in rows.get(name, [])),
        }
        for name in page
    ]
    note = "end offsets are confirmed by reading each partition's tail"
    return {"items": items, "total": len(names), "offset": offset, "limit": limit, "note": note}


@router.get("/topics", summary="Topics of your connectors and pipelines, with partitions and end offsets")
async def list_topics(
    request: Request,
    q: str | None = Query(None, max_length=200, description="part of the name"),
    budget: float = Query(5.0, ge=0.1, le=30, description="seconds allowed for confirming end offsets"),
    limit: int | None = Query(None, ge=1, le=500, description="a page of this many topics, by name (default: all)"),
    offset: int = Query(0, ge=0, le=10**9, description="topics skipped before the page"),
    principal: Principal = Depends(VIEW),
) -> dict[str, Any]:
    return await run_in_threadpool(_list, _settings(request), principal, q, budget, limit, offset)


def _one(settings, principal: Principal, name: str) -> dict[str, Any]:
    parts = _partitions_of(settings, principal, name)
    rows = _rows(settings, {name: parts}, 5.0).get(name, [])
    try:
        versions = subject_versions(settings.schema_registry_url, name)
        latest = schema_version(settings.schema_registry_url, name, versions[-1]) if versions else None
    except httpx.HTTPError as exc:
        raise _registry_down(exc) from None
    return {
        "name": name,
        "partitions": rows,
        "messages": sum(p["end"] - p["start"] for p in rows),
        "subject": f"{name}-value" if versions else None,
        "versions": versions,
        "latest": latest,
    }


@router.get("/topics/{name}", summary="A topic: partitions, offsets, the registry subject's versions")
async def get_topic(request: Request, name: str = TopicName, principal: Principal = Depends(VIEW)) -> dict[str, Any]:
    audit_as(request, "topic.view", topic=name)
    return await run_in_threadpool(_one, _settings(request), principal, name)


def _diff(settings, principal: Principal, name: str, a: int, b: int) -> dict[str, Any]:
    _partitions_of(settings, principal, name)
    try:
        return schema_diff(settings.schema_registry_url, name, a, b)
    except NoSuchVersion as exc:
        raise HTTPException(404, f"{exc} / 主题 {name!r} 没有该模式版本") from None
    except httpx.HTTPError as exc:
        raise _registry_down(exc) from None


@router.get("/topics/{name}/schema/diff", summary="The difference of two versions of a topic's value schema")
async def topic_schema_diff(
    request: Request,
    name: str = TopicName,
    a: int = Query(alias="from", ge=1, le=1_000_000),
    b: int = Query(alias="to", ge=1, le=1_000_000),
    principal: Principal = Depends(VIEW),
) -> dict[str, Any]:
    return await run_in_threadpool(_diff, _settings(request), principal, name, a, b)


def _levels(settings, principal: Principal, name: str) -> dict[str, str | None]:
    """Field -> classification from the topic's catalogue entry (a field's own, else the dataset's)."""
    try:
        ds = catalog_store(settings).dataset(principal.visible_tenants(), topic_urn(settings.kafka_bootstrap, name))
    except LookupError:
        return {}
    default = ds["business"].get("classification")
    return {f["name"]: f["business"].get("classification") or default for f in ds["fields"]}


def _messages(settings, principal: Principal, name: str, partition: int, offset: int, limit: int) -> dict:
    parts = _partitions_of(settings, principal, name)
    if partition not in parts:
        raise HTTPException(
            422, f"partition: topic {name!r} has partitions {parts} / 分区：主题 {name!r} 的分区为 {parts}"
        )
    page = read_messages(settings.kafka_bootstrap, settings.schema_registry_url, name, partition, offset, limit)
    full = principal.can("data:view")
    levels = _levels(settings, principal, name)
    for item in page["items"]:
        item["value"] = masked_value(item["value"], full, levels)
        if not full and item["key"] is not None:
            item["key"] = ALL_MASK
    page["masked"] = "classification" if full else "all"
    return page


@router.get("/topics/{name}/messages", summary="Messages of one partition from an offset, decoded and masked")
async def topic_messages(
    request: Request,
    name: str = TopicName,
    partition: int = Query(0, ge=0, le=100_000),
    offset: int = Query(0, ge=0, le=2**62),
    limit: int = Query(20, ge=1, le=200),
    principal: Principal = Depends(VIEW),
) -> dict[str, Any]:
    audit_as(request, "topic.messages", topic=name, partition=partition, offset=offset, limit=limit)
    return await run_in_threadpool(_messages, _settings(request), principal, name, partition, offset, limit)
