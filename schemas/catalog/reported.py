"""Who reported lineage from outside, and when: one `catalog_jobs` row (kind `reported`) per
reporting job, replaced with its edges, so the console can list imported lineage with its producer
and time apart from what Huiliu derives from its own jobs.

    note_report(engine, scope, origin, job, producer=None, by=None, edges=0)
    reports(engine, scopes) -> [{job, name, origin, via: api|openlineage, producer, reported_at,
                                 reported_by, edges, flows: [{source, target}]}], newest first
"""

from __future__ import annotations

import json
import time
from typing import Any

from sqlalchemy import delete, insert, select
from sqlalchemy.engine import Engine

from schemas.catalog.tables import catalog_edges, catalog_jobs
from schemas.catalog.urns import JOB_NAMESPACE

KIND = "reported"
MAX_REPORTS = 500  # the newest reporting jobs listed
MAX_FLOWS = 50  # dataset pairs listed per job


def note_report(
    engine: Engine,
    scope: str,
    origin: str,
    job: str,
    producer: str | None = None,
    by: str | None = None,
    edges: int = 0,
) -> None:
    properties = {"producer": producer, "reported_at": time.time(), "reported_by": by, "edges": edges}
    with engine.begin() as conn:
        conn.execute(delete(catalog_jobs).where(catalog_jobs.c.scope == scope, catalog_jobs.c.urn == job))
        conn.execute(
            insert(catalog_jobs).values(
                scope=scope,
                urn=job,
                name=job.removeprefix(f"hl:job:{JOB_NAMESPACE}/")[:500],
                kind=KIND,
                origin=origin,
                properties=json.dumps(properties, ensure_ascii=False),
            )
        )


def reports(engine: Engine, scopes: set[str] | None) -> list[dict[str, Any]]:
    """Two queries: the reporting jobs, then the dataset pairs of all their edges."""
    q = select(catalog_jobs).where(catalog_jobs.c.kind == KIND)
    if scopes is not None:
        q = q.where(catalog_jobs.c.scope.in_(sorted(scopes)))
    with engine.connect() as conn:
        jobs = conn.execute(q).all()
        origins = sorted({r.origin for r in jobs})
        flows: dict[tuple[str, str], list[dict[str, str]]] = {}
        if origins:
            pairs = select(
                catalog_edges.c.scope, catalog_edges.c.origin, catalog_edges.c.source_urn, catalog_edges.c.target_urn
            )
            pairs = pairs.where(catalog_edges.c.origin.in_(origins))
            if scopes is not None:
                pairs = pairs.where(catalog_edges.c.scope.in_(sorted(scopes)))
            for scope, origin, source, target in conn.execute(pairs.distinct()):
                flows.setdefault((scope, origin), []).append({"source": source, "target": target})
    out = []
    for r in jobs:
        props = json.loads(r.properties)
        found = sorted(flows.get((r.scope, r.origin), []), key=lambda f: (f["source"], f["target"]))
        out.append(
            {
                "job": r.urn,
                "name": r.name,
                "origin": r.origin,
                "via": r.origin.split(":", 1)[0],
                "tenant": r.scope or None,
                **props,
                "flows": found[:MAX_FLOWS],
            }
        )
    out.sort(key=lambda x: x.get("reported_at") or 0, reverse=True)
    return out[:MAX_REPORTS]
