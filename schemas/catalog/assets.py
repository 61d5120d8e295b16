"""Asset statistics and the data map, from the catalogue's datasets and lineage edges.

    summary(engine, scopes, quality=None, daily=None) -> totals, and per system, department and
        classification level: datasets, fields, rows, bytes, last change (newest shape change),
        harvested, consumers; with `quality` ({(scope, urn): {read, quarantined}}, the runners'
        counts) also events read, quarantined and the quarantine ratio; with `daily`
        ({(scope, urn): [(day, events)]}, the quality metrics' daily rollup) events per day
    dataset_stats(engine, scope, dataset, counts=None, days=None) -> one dataset's statistics:
        rows, bytes, last change, consumers (job URNs), events read, quarantined, quarantine ratio,
        events per day (mean over the days with events) and the days themselves
    data_map(engine, scopes, system=None) -> {"nodes", "edges"}: systems as nodes and flows
        between them (edges aggregated with dataset-flow and job counts); with `system`, its
        datasets and the datasets they exchange data with, dataset to dataset

A dataset's rows and bytes are the harvester's statistics (server estimates, ClickHouse parts,
file sizes); a consumer is a job that reads it (a dataset-level edge out of it).
"""

from __future__ import annotations

import json
from collections import defaultdict
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.engine import Engine

from schemas.catalog.tables import catalog_datasets, catalog_edges, catalog_search_docs, catalog_systems
from schemas.catalog.urns import BadUrn, parse_urn, system_urn

UNSET = "(none)"


def _where(column, scopes: set[str] | None):
    return True if scopes is None else column.in_(sorted(scopes))


def _group() -> dict[str, Any]:
    return {
        "datasets": 0,
        "fields": 0,
        "rows": 0,
        "bytes": 0,
        "last_change": None,
        "harvested": None,
        "consumers": 0,
        "events_read": 0,
        "quarantined": 0,
        "quarantine_ratio": None,
        "events_per_day": 0.0,
    }


def per_day(days: list | None) -> float:
    """Mean events per day over the days that had any (a pipeline deployed last week is not
    diluted by the month before it)."""
    return round(sum(n for _, n in days) / len(days), 1) if days else 0.0


def _add(group: dict[str, Any], d: dict[str, Any]) -> None:
    group["datasets"] += 1
    group["fields"] += d["fields"]
    group["rows"] += d["rows"]
    group["bytes"] += d["bytes"]
    group["consumers"] += d["consumers"]
    group["events_read"] += d["events_read"]
    group["quarantined"] += d["quarantined"]
    group["events_per_day"] = round(group["events_per_day"] + d["events_per_day"], 1)
    if group["events_read"]:
        group["quarantine_ratio"] = round(group["quarantined"] / group["events_read"], 6)
    for key in ("last_change", "harvested"):
        if d[key] is not None and (group[key] is None or d[key] > group[key]):
            group[key] = d[key]


def summary(
    engine: Engine, scopes: set[str] | None, quality: dict | None = None, daily: dict | None = None
) -> dict[str, Any]:
    quality, daily = quality or {}, daily or {}
    with engine.connect() as conn:
        rows = conn.execute(
            select(
                catalog_datasets.c.id,
                catalog_datasets.c.urn,
                catalog_datasets.c.scope,
                catalog_datasets.c.system_urn,
                catalog_datasets.c.properties,
                catalog_datasets.c.business,
                catalog_datasets.c.updated_at,
                catalog_datasets.c.harvested_at,
            ).where(_where(catalog_datasets.c.scope, scopes))
        ).all()
        fields = dict(
            conn.execute(
                select(catalog_search_docs.c.dataset_id, func.count())
                .where(catalog_search_docs.c.kind == "field", _where(catalog_search_docs.c.scope, scopes))
                .group_by(catalog_search_docs.c.dataset_id)
            ).all()
        )
        consumers = defaultdict(set)
        for scope, source, job in conn.execute(
            select(catalog_edges.c.scope, catalog_edges.c.source_urn, catalog_edges.c.job_urn).where(
                catalog_edges.c.source_field.is_(None), _where(catalog_edges.c.scope, scopes)
            )
        ):
            consumers[(scope, source)].add(job)
        names = {
            r.urn: r.name
            for r in conn.execute(
                select(catalog_systems.c.urn, catalog_systems.c.name).where(_where(catalog_systems.c.scope, scopes))
            )
        }
    totals, by = (
        _group(),
        {"system": defaultdict(_group), "department": defaultdict(_group), "classification": defaultdict(_group)},
    )
    for r in rows:
        props, business = json.loads(r.properties), json.loads(r.business)
        d = {
            "fields": int(fields.get(r.id, 0)),
            "rows": int(props.get("rows") or 0),
            "bytes": int(props.get("bytes") or 0),
            "consumers": len(consumers.get((r.scope, r.urn), ())),
            "events_read": int(quality.get((r.scope, r.urn), {}).get("read", 0)),
            "quarantined": int(quality.get((r.scope, r.urn), {}).get("quarantined", 0)),
            "events_per_day": per_day(daily.get((r.scope, r.urn))),
            "last_change": r.updated_at,
            "harvested": r.harvested_at,
        }
        _add(totals, d)
        _add(by["system"][r.system_urn], d)
        _add(by["department"][business.get("department") or UNSET], d)
        _add(by["classification"][business.get("classification") or UNSET], d)
    out: dict[str, Any] = {"totals": totals}
    for key, groups in by.items():
        items = [{key: k, **v} for k, v in sorted(groups.items())]
        if key == "system":
            for item in items:
                item["name"] = names.get(item["system"])
        out[f"by_{key}"] = items
    return out


def dataset_stats(
    engine: Engine, scope: str, dataset: dict[str, Any], counts: dict | None = None, days: list | None = None
) -> dict[str, Any]:
    """`dataset` as CatalogStore.dataset gives it; `counts` {read, quarantined} of the runners
    reading it, `days` [(day, events)] from the quality metrics."""
    with engine.connect() as conn:
        jobs = conn.execute(
            select(catalog_edges.c.job_urn)
            .where(
                catalog_edges.c.scope == scope,
                catalog_edges.c.source_urn == dataset["urn"],
                catalog_edges.c.source_field.is_(None),
            )
            .distinct()
        ).scalars()
        consumers = sorted(jobs)
    props = dataset.get("properties") or {}
    read, quarantined = int((counts or {}).get("read", 0)), int((counts or {}).get("quarantined", 0))
    return {
        "rows": props.get("rows"),
        "bytes": props.get("bytes"),
        "last_change": dataset.get("updated_at"),
        "harvested": dataset.get("harvested_at"),
        "consumers": consumers,
        "events_read": read,
        "quarantined": quarantined,
        "quarantine_ratio": round(quarantined / read, 6) if read else None,
        "events_per_day": per_day(days),
        "events_daily": [{"day": d.isoformat(), "events": n} for d, n in days or []],
    }


def _system_of(urn: str, known: dict[str, str]) -> str:
    if urn in known:
        return known[urn]
    try:
        return system_urn(parse_urn(urn).namespace)
    except BadUrn:
        return "hl:system:unknown"


def data_map(engine: Engine, scopes: set[str] | None, system: str | None = None) -> dict[str, Any]:
    with engine.connect() as conn:
        datasets = {
            r.urn: r
            for r in conn.execute(
                select(
                    catalog_datasets.c.urn,
                    catalog_datasets.c.name,
                    catalog_datasets.c.kind,
                    catalog_datasets.c.system_urn,
                ).where(_where(catalog_datasets.c.scope, scopes))
            )
        }
        systems = {
            r.urn: r
            for r in conn.execute(
                select(catalog_systems.c.urn, catalog_systems.c.name, catalog_systems.c.kind).where(
                    _where(catalog_systems.c.scope, scopes)
                )
            )
        }
        edges = conn.execute(
            select(catalog_edges.c.source_urn, catalog_edges.c.target_urn, catalog_edges.c.job_urn)
            .where(catalog_edges.c.source_field.is_(None), _where(catalog_edges.c.scope, scopes))
            .distinct()
        ).all()
    home = {u: r.system_urn for u, r in datasets.items()}
    if system is None:
        return _systems_map(systems, datasets, edges, home)
    return _datasets_map(system, datasets, edges, home)


def _systems_map(systems, datasets, edges, home) -> dict[str, Any]:
    counts: dict[str, int] = defaultdict(int)
    for r in datasets.values():
        counts[r.system_urn] += 1
    flows: dict[tuple[str, str], dict[str, set]] = defaultdict(lambda: {"flows": set(), "jobs": set()})
    for source, target, job in edges:
        pair = (_system_of(source, home), _system_of(target, home))
        flows[pair]["flows"].add((source, target))
        flows[pair]["jobs"].add(job)
    ids = set(counts) | {s for pair in flows for s in pair}
    nodes = [
        {
            "id": s,
            "kind": "system",
            "name": systems[s].name if s in systems else s.removeprefix("hl:system:"),
            "type": systems[s].kind if s in systems else None,
            "datasets": counts.get(s, 0),
        }
        for s in sorted(ids)
    ]
    out_edges = [
        {"source": a, "target": b, "flows": len(v["flows"]), "jobs": sorted(v["jobs"])}
        for (a, b), v in sorted(flows.items())
    ]
    return {"level": "system", "nodes": nodes, "edges": out_edges}


def _datasets_map(system: str, datasets, edges, home) -> dict[str, Any]:
    mine = {u for u, s in home.items() if s == system}
    touching = [(s, t, j) for s, t, j in edges if s in mine or t in mine]
    ids = mine | {u for s, t, _ in touching for u in (s, t)}
    nodes = [
        {
            "id": u,
            "kind": "dataset",
            "name": datasets[u].name if u in datasets else u,
            "type": datasets[u].kind if u in datasets else None,
            "system": _system_of(u, home),
        }
        for u in sorted(ids)
    ]
    out_edges = [{"source": s, "target": t, "job": j} for s, t, j in sorted(touching)]
    return {"level": "dataset", "system": system, "nodes": nodes, "edges": out_edges}
