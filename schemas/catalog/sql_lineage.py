"""Column lineage of a custom snapshot SELECT (a relational connector's `queries`), parsed with sqlglot:
each result column's source columns with OpenLineage's transformation type — DIRECT IDENTITY (the
column itself), DIRECT AGGREGATION (inside an aggregate), DIRECT TRANSFORMATION (an expression) —
and the columns that shape every row: INDIRECT FILTER (WHERE, HAVING), JOIN (ON), GROUP_BY,
SORT (ORDER BY). Unqualified columns are resolved with the tables' known columns when given.

    query_lineage(sql, dialect="postgres", tables={"public.person": ["id", "name"]})
      -> {"tables": ["public.person"], "columns": {"name": [("public.person", "name", {type, subtype})]},
          "indirect": [("public.person", "age", {"type": "INDIRECT", "subtype": "FILTER"})]}

`BadQuery` names what could not be read (the caller then records dataset-level lineage only).
"""

from __future__ import annotations

from typing import Any

DIALECTS = {"postgresql": "postgres", "mysql": "mysql", "mariadb": "mysql", "sqlite": "sqlite", "mssql": "tsql"}


class BadQuery(ValueError):
    pass


def _t(kind: str, subtype: str) -> dict[str, Any]:
    return {"type": kind, "subtype": subtype, "masking": False}


def query_lineage(sql: str, dialect: str | None = None, tables: dict[str, list[str]] | None = None) -> dict[str, Any]:
    import sqlglot
    from sqlglot import exp

    try:
        tree = sqlglot.parse_one(sql, read=DIALECTS.get(dialect or "", dialect))
    except sqlglot.errors.ParseError as exc:
        raise BadQuery(f"the query could not be parsed: {str(exc)[:200]}") from None
    select = tree if isinstance(tree, exp.Select) else tree.find(exp.Select)
    if select is None:
        raise BadQuery("the query is not a SELECT")
    aliases: dict[str, str] = {}
    for table in select.find_all(exp.Table):
        full = ".".join(p for p in (table.db, table.name) if p)
        aliases[table.alias_or_name] = full
        aliases[full] = full
    known = {name: set(cols) for name, cols in (tables or {}).items()}

    def owner(col: exp.Column) -> str | None:
        if col.table:
            return aliases.get(col.table)
        holders = [t for t in dict.fromkeys(aliases.values()) if col.name in known.get(t, ())]
        if len(holders) == 1:
            return holders[0]
        single = list(dict.fromkeys(aliases.values()))
        return single[0] if len(single) == 1 else None

    columns: dict[str, list[tuple[str, str, dict]]] = {}
    for projection in select.expressions:
        if isinstance(projection, exp.Star):
            raise BadQuery("SELECT * names no columns; list them")
        name = projection.alias_or_name
        inner = projection.this if isinstance(projection, exp.Alias) else projection
        if isinstance(inner, exp.Column):
            subtype = "IDENTITY"
        elif inner.find(exp.AggFunc):
            subtype = "AGGREGATION"
        else:
            subtype = "TRANSFORMATION"
        sources = []
        for col in inner.find_all(exp.Column):
            table = owner(col)
            if table:
                sources.append((table, col.name, _t("DIRECT", subtype)))
        columns[name] = sources
    indirect = []
    shaping = [("where", "FILTER"), ("having", "FILTER"), ("group", "GROUP_BY"), ("order", "SORT")]
    for arg, subtype in shaping:
        node = select.args.get(arg)
        for col in node.find_all(exp.Column) if node else ():
            if (table := owner(col)) is not None:
                indirect.append((table, col.name, _t("INDIRECT", subtype)))
    for join in select.args.get("joins") or []:
        on = join.args.get("on")
        for col in on.find_all(exp.Column) if on else ():
            if (table := owner(col)) is not None:
                indirect.append((table, col.name, _t("INDIRECT", "JOIN")))
    unique = list({(t, c, x["subtype"]): (t, c, x) for t, c, x in indirect}.values())
    return {"tables": sorted(set(aliases.values())), "columns": columns, "indirect": unique}
