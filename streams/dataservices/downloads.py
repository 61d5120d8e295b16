"""Downloads of a published service version for an approved application: CSV, XLSX and Parquet,
read from ClickHouse in blocks and written out as they come, so memory stays flat however many rows.

    plan = access_plan(store, clickhouse, buckets, key, name, version, params, classify, client_ip)
    for chunk in csv_chunks(batches(clickhouse, plan)): ...        # bytes, streamed to the caller
    write_file(batches(clickhouse, plan), plan, "xlsx" | "parquet" | "csv", path, progress)
    link = sign_link(secret, download_id, expires_at); link_valid(secret, download_id, expires, sig)

The checks are those of a call (streams/dataservices/serving.py, whose pieces it uses): the app key,
its scope, expiry and IP allowlist, the rate limit and quota (a download counts as one call), the
filters (`limit` and `offset` are the call route's paging, not a download's), the granted fields
only, the application's row filter, and the masking of the service's `masking` fields and of every
other granted field by its catalogue classification. Rows come `FINAL`, tombstones skipped, every
value a driver parameter, `max_execution_time` and a row cap (`MAX_ROWS`) on the query.

XLSX and Parquet are written to a file first (openpyxl's write-only workbook keeps only the current
row; pyarrow writes one row group per block), then streamed: neither format can be sent before its
end is written. A sheet holds 1,048,576 rows: a larger XLSX export is refused before it starts.
"""

from __future__ import annotations

import csv
import hashlib
import hmac
import io
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any

from sinks.clickhouse.reader import FINAL_ENGINES, identifier, table_engine
from streams.dataservices.serving import (
    CallRefused,
    TokenBuckets,
    admit,
    field_masks,
    selection,
    table_info,
)
from streams.dataservices.store import ServiceStore
from streams.transforms.masking import resolve

FORMATS = {
    "csv": "text/csv; charset=utf-8",
    "xlsx": "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
    "parquet": "application/vnd.apache.parquet",
}
MAX_ROWS = 20_000_000  # one export at most; more is a filter's job
XLSX_MAX_ROWS = 1_048_575  # a sheet's rows less the header
BLOCK = 20_000  # rows per ClickHouse block, CSV chunk and Parquet row group
TIMEOUT_S = 1800


@dataclass
class Plan:
    scope: str
    app: dict[str, Any]
    name: str
    version: int
    table: str
    columns: dict[str, str]  # the table's, name -> ClickHouse type
    fields: list[str]  # granted, in the service's order
    where: list[tuple[str, str, Any]]  # typed, row filter included
    order_by: list[str]
    masks: dict[str, Callable[[Any], Any]] = field(default_factory=dict)
    mask_specs: dict[str, Any] = field(default_factory=dict)  # what `masks` were made of (fanout.View)


def access_plan(
    store: ServiceStore,
    clickhouse,
    buckets: TokenBuckets,
    key: str | None,
    name: str,
    version: int,
    params: list[tuple[str, str]],
    classify=None,
    client_ip: str | None = None,
    count_call: bool = True,
    signed: dict | None = None,
) -> Plan:
    """Every check of a call (see the module's docstring); CallRefused (4xx / 503) otherwise.
    `signed`: a signed request's headers and what it signs (access.py), instead of `key`."""
    scope, app, spec = admit(store, buckets, key, name, version, signed, client_ip, count_call)
    params = [(k, v) for k, v in params if k not in ("limit", "offset", "format")]
    columns = table_info(clickhouse, spec.resource.table)[0]
    typed, granted, _, _ = selection(spec, app, params, columns)
    specs = field_masks(spec, scope, granted, classify)
    return Plan(
        scope=scope,
        app=app,
        name=name,
        version=version,
        table=spec.resource.table,
        columns=columns,
        fields=granted,
        where=typed,
        order_by=spec.sort or granted[:1],
        masks={f: resolve(m) for f, m in specs.items()},
        mask_specs=specs,
    )


def _query(plan: Plan, clickhouse, select: str, ordered: bool) -> tuple[str, dict[str, Any]]:
    engine = table_engine(clickhouse, plan.table)
    final = " FINAL" if any(e in engine for e in FINAL_ENGINES) else ""
    clauses, params = (["`_deleted` = 0"] if "_deleted" in plan.columns else []), {}
    ops = {"eq": "=", "gte": ">=", "lte": "<="}
    for n, (f, op, value) in enumerate(plan.where):
        clauses.append(f"{identifier(f)} IN %(p{n})s" if op == "in" else f"{identifier(f)} {ops[op]} %(p{n})s")
        params[f"p{n}"] = tuple(value) if op == "in" else value
    sql = (
        f"SELECT {select} FROM {identifier(plan.table)}{final}"
        + (f" WHERE {' AND '.join(clauses)}" if clauses else "")
        + (f" ORDER BY {', '.join(identifier(c) for c in plan.order_by)}" if ordered and plan.order_by else "")
    )
    return sql, params


def _settings() -> dict[str, Any]:
    return {"max_execution_time": TIMEOUT_S, "readonly": 2, "max_block_size": BLOCK}


def count(clickhouse, plan: Plan) -> int:
    sql, params = _query(plan, clickhouse, "count()", ordered=False)
    return int(clickhouse.execute(sql, params, settings=_settings())[0][0])


def batches(clickhouse, plan: Plan, limit: int = MAX_ROWS) -> Iterator[list[tuple]]:
    """Lists of row tuples (the plan's fields, masked), BLOCK rows at a time, at most `limit`."""
    sql, params = _query(plan, clickhouse, ", ".join(identifier(f) for f in plan.fields), ordered=True)
    sql += f" LIMIT {int(limit)}"
    index = [(i, plan.masks[f]) for i, f in enumerate(plan.fields) if f in plan.masks]
    batch: list[tuple] = []
    for row in clickhouse.execute_iter(sql, params, settings=_settings()):
        if index:
            row = list(row)
            for i, mask in index:
                row[i] = mask(row[i])
        batch.append(tuple(row))
        if len(batch) >= BLOCK:
            yield batch
            batch = []
    if batch:
        yield batch


def csv_chunks(fields: list[str], rows: Iterable[list[tuple]]) -> Iterator[bytes]:
    """UTF-8 with a byte-order mark (so spreadsheet programs read the Chinese right), one chunk per block."""
    buf = io.StringIO()
    writer = csv.writer(buf)
    writer.writerow(fields)
    yield ("\ufeff" + buf.getvalue()).encode()
    for block in rows:
        buf.seek(0)
        buf.truncate()
        writer.writerows(block)
        yield buf.getvalue().encode()


def _cell(value: Any) -> Any:
    if value is None or isinstance(value, str | int | float | bool):
        return value
    if hasattr(value, "isoformat"):
        return value.isoformat() if getattr(value, "tzinfo", None) else value
    return str(value)


def write_xlsx(fields: list[str], rows: Iterable[list[tuple]], path: str, on_block=None) -> int:
    from openpyxl import Workbook

    wb = Workbook(write_only=True)
    ws = wb.create_sheet("data")
    ws.append(fields)
    n = 0
    for block in rows:
        if n + len(block) > XLSX_MAX_ROWS:
            raise CallRefused(
                413,
                f"an XLSX sheet holds {XLSX_MAX_ROWS} rows: download CSV or Parquet, or filter",
                f"XLSX 工作表最多 {XLSX_MAX_ROWS} 行：请下载 CSV 或 Parquet，或加过滤条件",
            )
        for row in block:
            ws.append([_cell(v) for v in row])
        n += len(block)
        if on_block:
            on_block(n)
    wb.save(path)
    return n


def _arrow_type(ch_type: str, masked: bool):
    import pyarrow as pa

    base = ch_type.removeprefix("Nullable(").removeprefix("LowCardinality(").rstrip(")")
    if masked or base.startswith(("String", "FixedString", "UUID", "Decimal", "Enum")):
        return pa.string()
    if base.startswith("UInt64"):
        return pa.uint64()
    if base.startswith(("Int", "UInt")):
        return pa.int64()
    if base.startswith("Float"):
        return pa.float64()
    if base == "Date":
        return pa.date32()
    if base.startswith("DateTime"):
        return pa.timestamp("ms")
    return pa.string()


def write_parquet(plan: Plan, rows: Iterable[list[tuple]], path: str, on_block=None) -> int:
    import pyarrow as pa
    import pyarrow.parquet as pq

    types = [_arrow_type(plan.columns[f], f in plan.masks) for f in plan.fields]
    schema = pa.schema([pa.field(f, t) for f, t in zip(plan.fields, types)])
    n = 0
    with pq.ParquetWriter(path, schema, compression="zstd") as writer:
        for block in rows:
            cols = list(zip(*block))
            arrays = [
                pa.array([None if v is None else str(v) for v in col] if t == pa.string() else list(col), type=t)
                for col, t in zip(cols, types)
            ]
            writer.write_table(pa.Table.from_arrays(arrays, schema=schema), row_group_size=len(block))
            n += len(block)
            if on_block:
                on_block(n)
    return n


def write_file(fmt: str, plan: Plan, rows: Iterable[list[tuple]], path: str, on_block=None) -> int:
    """The export in `fmt` at `path`; the number of rows written."""
    if fmt == "xlsx":
        return write_xlsx(plan.fields, rows, path, on_block)
    if fmt == "parquet":
        return write_parquet(plan, rows, path, on_block)
    n = 0
    with open(path, "wb") as out:
        counted = _counting(rows, lambda k: on_block(k) if on_block else None)
        for chunk in csv_chunks(plan.fields, counted):
            out.write(chunk)
        n = counted.n
    return n


class _counting:
    def __init__(self, rows: Iterable[list[tuple]], on_block):
        self.rows, self.on_block, self.n = rows, on_block, 0

    def __iter__(self):
        for block in self.rows:
            self.n += len(block)
            self.on_block(self.n)
            yield block


# -- signed, time-limited links --------------------------------------------------------------------
def link_signature(secret: str, download_id: str, expires: int) -> str:
    key = hashlib.sha256(b"huiliu-download-link:" + secret.encode()).digest()
    return hmac.new(key, f"{download_id}:{int(expires)}".encode(), hashlib.sha256).hexdigest()


def link_valid(secret: str, download_id: str, expires: int, signature: str, now: float) -> str | None:
    """None when the link may be used, else why not (expired or not signed by us)."""
    # bytes: compare_digest refuses str with non-ASCII characters, which a forged link may carry
    expected = link_signature(secret, download_id, expires).encode()
    if not hmac.compare_digest(expected, (signature or "").encode("utf-8", "replace")):
        return "signature"
    if now > expires:
        return "expired"
    return None
