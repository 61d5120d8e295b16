"""Which data element each catalogue field is mapped to, and how well a dataset conforms.

    maps = MappingStore(engine)
    maps.put(scope, dataset_urn, field, element_code, method, score, actor)   # one per field: replaces
    maps.remove(scope, dataset_urn, field) -> bool
    maps.list(scope, dataset_urn=None, element_code=None) -> [{field_urn, dataset_urn, field, element, ...}]
    conformance(fields, mappings) -> {"fields", "mapped", "ratio", "unmapped"}

A field is named by the catalogue's field URN `<dataset URN>#<field>` (split_field_urn). Mappings
are confirmed by a person: `method` says whether they chose it by hand or accepted a suggestion.
"""

from __future__ import annotations

import time
from typing import Any

from sqlalchemy import delete, insert, select, update
from sqlalchemy.engine import Engine

from quality_stream.governance.model import StandardsError, problem
from quality_stream.governance.tables import std_mappings


def split_field_urn(field_urn: str) -> tuple[str, str]:
    """(dataset URN, field) of `hl:dataset:...#field`; StandardsError when there is no `#field`."""
    dataset, sep, field = (field_urn or "").rpartition("#")
    if not sep or not dataset or not field:
        raise StandardsError(
            [
                problem(
                    "field_urn",
                    "a field URN is <dataset URN>#<field>, e.g. hl:dataset:postgres://h:5432/db.s.t#name",
                    "字段 URN 的形式为 <数据集 URN>#<字段名>",
                )
            ]
        )
    return dataset, field


def _plain(row) -> dict[str, Any]:
    return {
        "field_urn": f"{row.dataset_urn}#{row.field}",
        "dataset_urn": row.dataset_urn,
        "field": row.field,
        "element": row.element_code,
        "method": row.method,
        "score": row.score,
        "mapped_by": row.mapped_by,
        "created_at": row.created_at,
    }


class MappingStore:
    def __init__(self, engine: Engine):
        self.engine = engine

    def put(
        self,
        scope: str,
        dataset_urn: str,
        field: str,
        element_code: str,
        method: str,
        score: float | None,
        actor: str,
    ) -> dict[str, Any]:
        values = {"element_code": element_code, "method": method, "score": score, "mapped_by": actor}
        where = (std_mappings.c.scope == scope) & (std_mappings.c.dataset_urn == dataset_urn)
        where &= std_mappings.c.field == field
        with self.engine.begin() as conn:
            if conn.execute(update(std_mappings).where(where).values(**values, created_at=time.time())).rowcount == 0:
                conn.execute(
                    insert(std_mappings).values(
                        scope=scope, dataset_urn=dataset_urn, field=field, created_at=time.time(), **values
                    )
                )
            return _plain(conn.execute(select(std_mappings).where(where)).first())

    def remove(self, scope: str, dataset_urn: str, field: str) -> dict[str, Any] | None:
        where = (std_mappings.c.scope == scope) & (std_mappings.c.dataset_urn == dataset_urn)
        where &= std_mappings.c.field == field
        with self.engine.begin() as conn:
            row = conn.execute(select(std_mappings).where(where)).first()
            if row is None:
                return None
            conn.execute(delete(std_mappings).where(std_mappings.c.id == row.id))
        return _plain(row)

    def list(self, scope: str, dataset_urn: str | None = None, element_code: str | None = None) -> list[dict[str, Any]]:
        query = select(std_mappings).where(std_mappings.c.scope == scope)
        if dataset_urn:
            query = query.where(std_mappings.c.dataset_urn == dataset_urn)
        if element_code:
            query = query.where(std_mappings.c.element_code == element_code)
        with self.engine.connect() as conn:
            rows = conn.execute(query.order_by(std_mappings.c.dataset_urn, std_mappings.c.field)).all()
        return [_plain(r) for r in rows]


def conformance(fields: list[str], mappings: list[dict[str, Any]]) -> dict[str, Any]:
    """Mapped ratio of a dataset's fields (mappings of fields it no longer has are not counted)."""
    mapped = {m["field"]: m["element"] for m in mappings if m["field"] in set(fields)}
    return {
        "fields": len(fields),
        "mapped": len(mapped),
        "ratio": round(len(mapped) / len(fields), 4) if fields else None,
        "unmapped": [f for f in fields if f not in mapped],
        "elements": mapped,
    }


def value_conformance(runner: dict[str, int], elements: list[str]) -> list[dict[str, Any]]:
    """Per element, from a pipeline runner's cumulative counters (`read`, `quarantined.<rule id>`):
    rows checked, rows each generated check (`std.<element>.<check>`) quarantined, and `pass_ratio`
    = 1 - the worst check's failures / checked (exact with one failing check, an upper bound with more)."""
    checked = int(runner.get("read", 0))
    out = []
    for code in sorted(set(elements)):
        prefix = f"quarantined.std.{code}."
        failed = {k.removeprefix("quarantined."): int(v) for k, v in runner.items() if k.startswith(prefix)}
        worst = max(failed.values(), default=0)
        ratio = round(1 - worst / checked, 4) if checked else None
        out.append({"element": code, "checked": checked, "failed": failed, "pass_ratio": ratio})
    return out
