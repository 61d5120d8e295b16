"""Scorecards: a quality score (share of judged values that passed, 0..100) per dataset, system or
department, overall and by dimension, with its daily trend.

A department is the catalogue's `business.department` of a dataset; metrics name datasets by their
raw topic (`<prefix>.<system>.<schema>.<table>`), matched to catalogue datasets by topic, or by
`schema.table` (the last two topic parts)."""

from __future__ import annotations

from typing import Any

from quality_stream.metrics import query
from schemas.naming import topic_part


def department_map(catalog_datasets: list[dict[str, Any]], topics: list[str]) -> dict[str, str]:
    """topic -> department, for the topics whose catalogue dataset names a department."""
    by_name: dict[str, str] = {}
    for d in catalog_datasets:
        dep = (d.get("business") or {}).get("department")
        if dep:
            name = d["name"]
            by_name[name] = dep
            parts = name.split(".")
            if len(parts) >= 2:
                by_name.setdefault(".".join(topic_part(p) for p in parts[-2:]), dep)
    out = {}
    for t in topics:
        dep = by_name.get(t) or by_name.get(".".join(t.split(".")[-2:]))
        if dep:
            out[t] = dep
    return out


def topics(client, scope: str, start, end) -> list[str]:
    return [r["dataset"] for r in query.top_datasets(client, query.Filter(scope), start, end, 100_000)]


def scorecards(client, scope: str, by: str, start, end, departments: dict[str, str] | None = None) -> list[dict]:
    """Rows {key, score, evaluated, failed, dimensions: {dim: score}, trend: [{day, score}]}, worst first."""
    where = query.Filter(scope)
    column = "system" if by == "system" else "dataset"
    cells: dict[str, dict[str, list[int]]] = {}
    for row in query.grouped(client, where, start, end, column):
        key = row[column]
        if by == "department":
            key = (departments or {}).get(key)
            if key is None:
                continue
        acc = cells.setdefault(key, {}).setdefault(row["dimension"], [0, 0])
        acc[0] += row["evaluated"]
        acc[1] += row["failed"]
    trends: dict[str, dict[str, list[int]]] = {}
    cond, params = where.sql(start, end)
    for key, day, ev, f in client.execute(
        f"SELECT {column}, day, sum(evaluated), sum(failed) FROM {query.DAILY} WHERE {cond} "
        f"GROUP BY {column}, day ORDER BY day",
        params,
    ):
        if by == "department":
            key = (departments or {}).get(key)
            if key is None:
                continue
        acc = trends.setdefault(key, {}).setdefault(day.isoformat(), [0, 0])
        acc[0] += ev
        acc[1] += f
    out = []
    for key, dims in cells.items():
        ev = sum(v[0] for v in dims.values())
        f = sum(v[1] for v in dims.values())
        out.append(
            {
                "key": key,
                "score": query.score(ev, f),
                "evaluated": ev,
                "failed": f,
                "dimensions": {d: query.score(*v) for d, v in sorted(dims.items())},
                "trend": [{"day": d, "score": query.score(*v)} for d, v in sorted(trends.get(key, {}).items())],
            }
        )
    return sorted(out, key=lambda r: (r["score"] if r["score"] is not None else 101, r["key"]))
