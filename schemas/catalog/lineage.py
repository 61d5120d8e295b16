"""Lineage edges (dataset and field level) and bounded traversal over them.

Edges are replaced per `origin` (the connector document that makes them), so lineage follows what
the platform runs. A field edge carries OpenLineage's transformation: {type: DIRECT|INDIRECT,
subtype: IDENTITY|TRANSFORMATION|FILTER..., masking}.

    replace_edges(engine, scope, origin, edges)
    traverse(engine, scopes, urn, direction="downstream", depth=3, level="dataset", field=None)
      -> {"nodes": [...], "edges": [...], "partial": bool, "limits": {...}}
"""

from __future__ import annotations

import json
from collections import deque
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import delete, insert, or_, select
from sqlalchemy.engine import Engine

from schemas.catalog.tables import catalog_datasets, catalog_edges

MAX_DEPTH = 20
MAX_NODES = 2000
REPORTED = ("api:", "openlineage:")  # origins of edges reported from outside (schemas/catalog/received.py)


@dataclass(frozen=True)
class Edge:
    job: str
    source: str
    target: str
    source_field: str | None = None
    target_field: str | None = None
    transformation: dict[str, Any] | None = field(default=None, hash=False, compare=False)


def replace_edges(engine: Engine, scope: str, origin: str, edges: list[Edge]) -> None:
    with engine.begin() as conn:
        conn.execute(delete(catalog_edges).where(catalog_edges.c.scope == scope, catalog_edges.c.origin == origin))
        if edges:
            conn.execute(
                insert(catalog_edges),
                [
                    {
                        "scope": scope,
                        "origin": origin,
                        "job_urn": e.job,
                        "source_urn": e.source,
                        "target_urn": e.target,
                        "source_field": e.source_field,
                        "target_field": e.target_field,
                        "transformation": json.dumps(e.transformation, ensure_ascii=False)
                        if e.transformation
                        else None,
                    }
                    for e in edges
                ],
            )


def _node_id(urn: str, fld: str | None) -> str:
    return f"{urn}#{fld}" if fld else urn


def traverse(
    engine: Engine,
    scopes: set[str] | None,
    urn: str,
    direction: str = "downstream",
    depth: int = 3,
    level: str = "dataset",
    field_name: str | None = None,
    max_nodes: int = MAX_NODES,
) -> dict[str, Any]:
    """Breadth-first from `urn` (or one of its fields), one query per hop and direction."""
    depth = max(0, min(depth, MAX_DEPTH))
    fields = level == "field" or field_name is not None
    start = _node_id(urn, field_name)
    seen = {start: 0}
    frontier = deque([(urn, field_name)])
    edges_out: dict[tuple, dict[str, Any]] = {}
    partial = False
    directions = ("upstream", "downstream") if direction == "both" else (direction,)
    with engine.connect() as conn:
        for hop in range(1, depth + 1):
            if not frontier:
                break
            current = list(frontier)
            frontier.clear()
            urns = sorted({u for u, _ in current})
            for way in directions:
                here, there = ("source", "target") if way == "downstream" else ("target", "source")
                col = catalog_edges.c[f"{here}_urn"]
                q = select(catalog_edges).where(col.in_(urns))
                if scopes is not None:
                    q = q.where(catalog_edges.c.scope.in_(sorted(scopes)))
                q = q.where(
                    catalog_edges.c.source_field.isnot(None) if fields else catalog_edges.c.source_field.is_(None)
                )
                wanted = {(u, f) for u, f in current}
                for e in conn.execute(q):
                    at = (getattr(e, f"{here}_urn"), getattr(e, f"{here}_field"))
                    if fields and at not in wanted and not (field_name is None and hop == 1 and at[0] == urn):
                        continue
                    nxt = (getattr(e, f"{there}_urn"), getattr(e, f"{there}_field"))
                    key = (e.source_urn, e.source_field, e.target_urn, e.target_field, e.job_urn)
                    edges_out[key] = {
                        "source": _node_id(e.source_urn, e.source_field),
                        "target": _node_id(e.target_urn, e.target_field),
                        "job": e.job_urn,
                        "transformation": json.loads(e.transformation) if e.transformation else None,
                        "reported": e.origin.startswith(REPORTED),
                    }
                    nid = _node_id(*nxt)
                    if nid not in seen:
                        if len(seen) >= max_nodes:
                            partial = True
                            continue
                        seen[nid] = hop
                        frontier.append(nxt)
        if frontier and _edges_beyond(conn, scopes, list(frontier), directions, fields):
            partial = True  # depth reached with edges left to follow
        owners = _datasets(conn, scopes, {n.split("#", 1)[0] for n in seen})
    nodes = []
    for nid, hop in seen.items():
        ds, _, fld = nid.partition("#")
        info = owners.get(ds, {})
        nodes.append({"id": nid, "dataset": ds, "field": fld or None, "hops": hop, **info})
    return {
        "root": start,
        "direction": direction,
        "level": "field" if fields else "dataset",
        "nodes": sorted(nodes, key=lambda n: (n["hops"], n["id"])),
        "edges": sorted(edges_out.values(), key=lambda e: (e["source"], e["target"])),
        "partial": partial,
        "limits": {"depth": depth, "max_nodes": max_nodes},
    }


def _edges_beyond(conn, scopes, frontier: list[tuple], directions: tuple, fields: bool) -> bool:
    """Whether any node of the last hop has an edge the traversal did not follow."""
    wanted = set(frontier)
    for way in directions:
        here = "source" if way == "downstream" else "target"
        q = select(catalog_edges.c[f"{here}_urn"], catalog_edges.c[f"{here}_field"]).where(
            catalog_edges.c[f"{here}_urn"].in_(sorted({u for u, _ in frontier})),
            catalog_edges.c.source_field.isnot(None) if fields else catalog_edges.c.source_field.is_(None),
        )
        if scopes is not None:
            q = q.where(catalog_edges.c.scope.in_(sorted(scopes)))
        if any((u, f) in wanted for u, f in conn.execute(q)):
            return True
    return False


def _datasets(conn, scopes: set[str] | None, urns: set[str]) -> dict[str, dict[str, Any]]:
    if not urns:
        return {}
    q = select(catalog_datasets.c.urn, catalog_datasets.c.name, catalog_datasets.c.kind, catalog_datasets.c.business)
    q = q.where(or_(catalog_datasets.c.urn.in_(sorted(urns))))
    if scopes is not None:
        q = q.where(catalog_datasets.c.scope.in_(sorted(scopes)))
    out = {}
    for r in conn.execute(q):
        b = json.loads(r.business)
        out[r.urn] = {"name": r.name, "kind": r.kind, "owner": b.get("owner"), "steward": b.get("steward")}
    return out
