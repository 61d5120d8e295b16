"""One ClickHouse query profiles every column of a table (a single scan), per column:

    rows, nulls, null_ratio, distinct (uniq: an estimate), min, max (as text, numbers and dates
    compared natively), length {min, max, avg, p50, p90} (of text columns; None for numbers and dates), top_values (topK 10),
    patterns (topK 5 of the shape: digits -> 9, ASCII letters -> A, other characters kept),
    pattern_count (uniq of the shapes).

ReplacingMergeTree sink tables are profiled FINAL without `_deleted` tombstones when they have them.
Identifiers come from system.columns and are quoted; nothing the caller typed reaches the SQL text.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

TOP = 10
PATTERNS = 5
PATTERN_SAMPLE = 20_000
MAX_COLUMNS = 200
INTERNAL = {"_version", "_deleted"}
QUERY_SETTINGS = {"max_execution_time": 60}
Progress = Callable[[float, str], None]


class ProfileError(ValueError):
    pass


CLICKHOUSE_URN = "hl:dataset:clickhouse://"


def clickhouse_table_of(urn: str) -> str | None:
    """`db.table` of a catalogue ClickHouse dataset URN (hl:dataset:clickhouse://host:port/db.table), else None."""
    if not urn.startswith(CLICKHOUSE_URN) or "/" not in urn[len(CLICKHOUSE_URN) :]:
        return None
    return urn[len(CLICKHOUSE_URN) :].split("/", 1)[1]


def _columns(client, database: str, table: str) -> list[tuple[str, str]]:
    rows = client.execute(
        "SELECT name, type FROM system.columns WHERE database = %(d)s AND table = %(t)s",
        {"d": database, "t": table},
    )
    if not rows:
        raise ProfileError(f"no table {database}.{table} in ClickHouse / ClickHouse 中没有表 {database}.{table}")
    return rows


def _q(name: str) -> str:
    return "`" + name.replace("\\", "\\\\").replace("`", "\\`") + "`"


def _source(client, database: str, name: str, names: set[str]) -> str:
    """The table as a FROM clause: ReplacingMergeTree tables FINAL and without tombstones."""
    source = f"{_q(database)}.{_q(name)}"
    engine = client.execute(
        "SELECT engine FROM system.tables WHERE database = %(d)s AND name = %(t)s", {"d": database, "t": name}
    )[0][0]
    if "ReplacingMergeTree" in engine:
        source += " FINAL"
        if "_deleted" in names:
            source += " WHERE _deleted = 0"
    return source


def sample_values(client, table: str, columns: list[str], n: int = 1000) -> dict[str, list[str]]:
    """Up to n rows' values of the named columns as text (NULLs left out), for value evidence.
    Columns the table lacks are absent from the answer."""
    database, _, name = table.rpartition(".")
    database = database or client.execute("SELECT currentDatabase()")[0][0]
    names = {c for c, _ in _columns(client, database, name)}
    chosen = [c for c in columns if c in names and c not in INTERNAL][:MAX_COLUMNS]
    if not chosen:
        return {}
    cols = ", ".join(f"toString({_q(c)})" for c in chosen)
    source = _source(client, database, name, names)
    rows = client.execute(f"SELECT {cols} FROM {source} LIMIT {int(n)}", settings=QUERY_SETTINGS)
    return {c: [r[i] for r in rows if r[i] is not None] for i, c in enumerate(chosen)}


def _run(client, sql: str, progress: Progress | None, low: float, high: float, stage: str) -> list:
    """The query's rows; with `progress`, called with the percent read as ClickHouse reports it. An
    exception the callback raises (a job cancelled) cancels the query in ClickHouse and goes on up."""
    if progress is None:
        return client.execute(sql, settings=QUERY_SETTINGS)
    running = client.execute_with_progress(sql, settings=QUERY_SETTINGS)
    try:
        for done, total in running:  # total is 0 when ClickHouse cannot tell (views): still a cancel point
            progress(low + (high - low) * min(done / total, 1.0) if total else low, stage)
    except BaseException:
        client.cancel()
        raise
    result = running.get_result()
    progress(high, stage)
    return result


def check_columns(client, table: str, columns: list[str] | None = None) -> None:
    """ProfileError naming the table or the first column ClickHouse does not have."""
    database, _, name = table.rpartition(".")
    database = database or client.execute("SELECT currentDatabase()")[0][0]
    names = {n for n, _ in _columns(client, database, name)}
    _known(table, columns, names)


def _known(table: str, columns: list[str] | None, names: set[str]) -> None:
    unknown = [c for c in columns or [] if c not in names]
    if unknown:
        raise ProfileError(f"no column {unknown[0]!r} in {table} / 表中没有列 {unknown[0]!r}")


def profile_table(
    client, table: str, columns: list[str] | None = None, progress: Progress | None = None
) -> dict[str, Any]:
    """`progress(percent, stage)`, when given, follows the two scans (columns 0-80, patterns 80-100)."""
    database, _, name = table.rpartition(".")
    database = database or client.execute("SELECT currentDatabase()")[0][0]
    found = _columns(client, database, name)
    names = {n for n, _ in found}
    _known(table, columns, names)
    chosen = [(n, t) for n, t in found if (columns is None and n not in INTERNAL) or (columns and n in columns)]
    chosen = chosen[:MAX_COLUMNS]
    source = _source(client, database, name, names)
    parts = ["count()"]
    kinds: list[bool] = []  # per column: a number or date (natural order)?
    for col, ctype in chosen:
        c = _q(col)
        base = ctype[len("Nullable(") : -1] if ctype.startswith("Nullable(") else ctype
        text = c if base == "String" else f"toString({c})"  # a String column needs no conversion
        natural = ctype.startswith(
            (
                "Int",
                "UInt",
                "Float",
                "Decimal",
                "Date",
                "Nullable(Int",
                "Nullable(UInt",
                "Nullable(Float",
                "Nullable(Decimal",
                "Nullable(Date",
            )
        )
        # numbers and dates: native min/max/topK (no text conversion: half the cost), no lengths
        parts += [
            f"countIf(isNull({c}))",
            f"uniq({c})",
            f"toString(min({c}))" if natural else f"min({text})",
            f"toString(max({c}))" if natural else f"max({text})",
            f"topK({TOP})({c})" if natural else f"topK({TOP})({text})",
        ]
        if not natural:
            parts += [
                f"min(lengthUTF8({text}))",
                f"max(lengthUTF8({text}))",
                f"avg(lengthUTF8({text}))",
                f"quantiles(0.5, 0.9)(lengthUTF8({text}))",
            ]
        kinds.append(natural)
    row = _run(client, f"SELECT {', '.join(parts)} FROM {source}", progress, 0.0, 80.0, "columns")[0]
    shapes = []
    for col, _ in chosen:
        shape = f"replaceRegexpAll(replaceRegexpAll(toString({_q(col)}), '[0-9]', '9'), '[A-Za-z]', 'A')"
        shapes += [f"topK({PATTERNS})({shape})", f"uniq({shape})"]
    names_sql = ", ".join(_q(c) for c, _ in chosen)
    sample = f"(SELECT {names_sql} FROM {source} LIMIT {PATTERN_SAMPLE})"
    shaped = _run(client, f"SELECT count(), {', '.join(shapes)} FROM {sample}", progress, 80.0, 100.0, "patterns")[0]
    rows = int(row[0])
    out: dict[str, Any] = {"table": f"{database}.{name}", "rows": rows, "pattern_sample": shaped[0], "columns": {}}
    at = 1
    for i, (col, ctype) in enumerate(chosen):
        natural = kinds[i]
        width = 5 if natural else 9
        v = row[at : at + width]
        at += width
        nulls = int(v[0])
        non_null = rows - nulls
        out["columns"][col] = {
            "type": ctype,
            "nulls": nulls,
            "null_ratio": round(nulls / rows, 6) if rows else 0.0,
            "distinct": int(v[1]),
            "min": v[2] if non_null else None,
            "max": v[3] if non_null else None,
            "length": None
            if natural
            else {
                "min": int(v[5]),
                "max": int(v[6]),
                "avg": round(float(v[7]), 3) if rows else 0.0,
                "p50": float(v[8][0]) if rows else 0.0,
                "p90": float(v[8][1]) if rows else 0.0,
            },
            "top_values": [str(x) for x in v[4]],
            "patterns": list(shaped[1 + 2 * i]),
            "pattern_count": int(shaped[2 + 2 * i]),
        }
    return out
