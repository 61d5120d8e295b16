"""Impact of changing or dropping a dataset or one of its fields: everything downstream in the
lineage graph (datasets, fields, the jobs that carry the flow, the rules guarding it, the owners to
notify), and the same list as CSV rows for an export (issue 15).

    summary = impact(engine, scopes, urn, field=None, depth=10)            # bounded: MAX_NODES
    header, rows, partial = impact_table(engine, scopes, urn, field, depth, lang)  # EXPORT_MAX_NODES
    text = csv_text(header, rows)                                                   # UTF-8 with BOM
"""

from __future__ import annotations

import csv
import io
from typing import Any

from sqlalchemy.engine import Engine

from schemas.catalog.lineage import MAX_NODES, traverse

EXPORT_MAX_NODES = 100_000  # an export runs as a job: it may follow far more than a page shows

HEADERS = {
    "zh": ["跳数", "数据集", "名称", "字段", "类型", "负责人", "数据管家", "经由作业", "守护规则"],
    "en": ["hops", "dataset", "name", "field", "kind", "owner", "steward", "via jobs", "guarding rules"],
}


def _downstream(engine: Engine, scopes, urn: str, field: str | None, depth: int, max_nodes: int) -> dict:
    level = "field" if field else "dataset"
    return traverse(engine, scopes, urn, "downstream", depth, level, field, max_nodes=max_nodes)


def _rules(edge: dict) -> list[str]:
    return list((edge["transformation"] or {}).get("rules", []))


def impact(engine: Engine, scopes, urn: str, field: str | None = None, depth: int = 10) -> dict[str, Any]:
    graph = _downstream(engine, scopes, urn, field, depth, MAX_NODES)
    affected = [n for n in graph["nodes"] if n["hops"] > 0]
    return {
        "root": graph["root"],
        "datasets": sorted({n["dataset"] for n in affected}),
        "fields": [n["id"] for n in affected if n["field"]],
        "jobs": sorted({e["job"] for e in graph["edges"]}),
        "rules": sorted({r for e in graph["edges"] for r in _rules(e)}),
        "owners": sorted({n["owner"] for n in affected if n.get("owner")}),
        "partial": graph["partial"],
    }


def impact_table(
    engine: Engine,
    scopes,
    urn: str,
    field: str | None,
    depth: int,
    lang: str = "zh",
    max_nodes: int = EXPORT_MAX_NODES,
) -> tuple[list[str], list[list[Any]], bool]:
    """One row per affected dataset or field, nearest first, with the jobs and rules on the edges
    that reach it; and whether the traversal stopped at its bounds."""
    graph = _downstream(engine, scopes, urn, field, depth, max_nodes)
    into: dict[str, list[dict]] = {}
    for e in graph["edges"]:
        into.setdefault(e["target"], []).append(e)
    rows = []
    for n in graph["nodes"]:
        if n["hops"] == 0:
            continue
        edges = into.get(n["id"], [])
        rows.append(
            [
                n["hops"],
                n["dataset"],
                n.get("name") or "",
                n["field"] or "",
                n.get("kind") or "",
                n.get("owner") or "",
                n.get("steward") or "",
                " ".join(sorted({e["job"] for e in edges})),
                " ".join(sorted({r for e in edges for r in _rules(e)})),
            ]
        )
    return HEADERS.get(lang, HEADERS["zh"]), rows, graph["partial"]


def csv_text(header: list[str], rows: list[list[Any]]) -> str:
    """CSV with a byte-order mark, so Excel (what departments open it with) reads the Chinese right."""
    out = io.StringIO()
    out.write("\ufeff")
    writer = csv.writer(out)
    writer.writerow(header)
    writer.writerows(rows)
    return out.getvalue()
