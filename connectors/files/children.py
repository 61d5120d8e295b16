"""JSON arrays inside records as rows of child tables (issue 21, `children` of a file connector).

    children: [{table: 分支机构, path: branches, columns: [{name: 名称}, {name: 地址, source: addr.street}]}]

Each element of the array at `path` in a record becomes one row of the child table (its own topic
`<prefix>.<system>.<schema>.<table>`): the parent's key columns, `index_column` (the element's
1-based position; with the parent's key, the child's key) and the element's declared columns
(`source` relative to the element; a scalar element is `{"value": element}`). A record is one
unit: if an element cannot be typed, the record is refused whole with the reason naming the array
and the item, so its parent row and its children are quarantined together and replayed together.
"""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from pydantic import BaseModel, ConfigDict, Field

from connectors.base import CapturedTable
from connectors.files.coerce import ColumnDef, RowError, RowTyper, path_getter
from connectors.files.messages import render
from schemas.sqltypes import ColumnSpec


class ChildTable(BaseModel):
    model_config = ConfigDict(extra="forbid")

    table: str = Field(description="the child table (its topic is named like the parent's)")
    path: str = Field(description="the array in each record: a field name or a dotted path (org.branches)")
    columns: list[ColumnDef] = Field(
        min_length=1, description="typed columns of each element; `source` relative to the element"
    )
    index_column: str = Field("item_index", description="the element's 1-based position in the array")


def _refused(code: str, params: dict[str, Any]) -> RowError:
    return RowError(render(code, params), code, params)


class ChildRows:
    """One child table: its layout and the rows of one parent record."""

    def __init__(self, spec: ChildTable, parent_keys: list[ColumnSpec], system: str, schema: str | None):
        self.spec = spec
        self.get = path_getter(spec.path) or (lambda record: record.get(spec.path))
        self.keys = [k.name for k in parent_keys]
        own = tuple(c.spec() for c in spec.columns)
        columns = (
            *(ColumnSpec(k.name, k.sql_type, False, True) for k in parent_keys),
            ColumnSpec(spec.index_column, sa.Integer(), False, True),
            *own,
        )
        self.table = CapturedTable(system, spec.table, columns, None, schema)
        self.typer = RowTyper(
            own,
            {c.name: c.source for c in spec.columns if c.source},
            {c.name: c.format for c in spec.columns},
            defs=spec.columns,
        )

    def rows(self, record: dict[str, Any], parent: dict[str, Any]) -> list[dict[str, Any]]:
        """The child rows of `record` whose typed row is `parent`; RowError naming the item."""
        items = self.get(record)
        if items is None:
            return []
        if not isinstance(items, list):
            raise _refused("not_array", {"path": self.spec.path, "found": type(items).__name__})
        key = {k: parent[k] for k in self.keys}
        out = []
        for i, item in enumerate(items, 1):
            element = item if isinstance(item, dict) else {"value": item}
            try:
                typed = self.typer(element)
            except RowError as exc:
                inner = {"detail": str(exc), "detail_zh": render(exc.code, exc.params, "zh")}
                raise _refused("child_row", {"path": self.spec.path, "index": i, **inner}) from None
            out.append({**key, self.spec.index_column: i, **typed})
        return out


def child_problems(children: list[ChildTable], columns: list[ColumnDef], table: str, kind: str) -> list[str]:
    """Why a file connector's `children` cannot work (for its config model's validator)."""
    if not children:
        return []
    problems = []
    if kind not in ("json", "jsonl"):
        problems.append(
            f"children: arrays inside records are read from JSON only (format.kind json or jsonl, not {kind})"
        )
    keys = [c.name for c in columns if c.key]
    if not keys:
        problems.append(
            "children: the parent table needs declared key columns (columns[].key: true), the children's link"
        )
    names = [table]
    for i, child in enumerate(children):
        if child.table in names:
            problems.append(f"children.{i}.table: {child.table!r} is already the parent's or another child's table")
        names.append(child.table)
        own = [c.name for c in child.columns]
        clash = sorted(set(own) & {*keys, child.index_column})
        if clash:
            problems.append(f"children.{i}.columns: {', '.join(clash)} would be the parent key or index column too")
    return problems
