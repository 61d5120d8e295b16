"""Import reports: one row per file import (rows read, ok, bad, a sample of bad rows) in the control DB.

Written by the file source in `committed()`, i.e. only for rows that are durable in Kafka, and
read by the API (`api/routers/imports.py`). Every bad row also goes to the quarantine topic with
its file, line, reason and raw content; `errors` holds the first `MAX_ERRORS` for a quick look,
and table `file_import_rows` every bad row (up to `MAX_ROWS_KEPT` per import) with its reason's
catalogue code and params and the row as it stood in the file (bounded), for paging, counts by
reason and export. `details` (JSON) holds what the reader decided: header line, title rows,
skipped totals/footer rows, the sheet, the encoding and any switch of it.
"""

from __future__ import annotations

import json
import logging
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import (
    BigInteger,
    Column,
    DateTime,
    Float,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    func,
    insert,
    select,
)

from deploy.control import engine_for
from deploy.messages import post_message

log = logging.getLogger(__name__)

MAX_ERRORS = 100
MAX_ROWS_KEPT = 100_000
metadata = MetaData()

file_imports = Table(
    "file_imports",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("connector", String(200), nullable=False, index=True),
    Column("path", String(1000), nullable=False),
    Column("size", BigInteger, nullable=False),
    Column("mtime", Float, nullable=False),
    Column("checksum", String(64), doc="sha256 of the file content"),
    Column("status", String(20), nullable=False, doc="reading, done, done_with_errors, failed, changed_ignored"),
    Column("rows_read", BigInteger, nullable=False, default=0),
    Column("rows_ok", BigInteger, nullable=False, default=0),
    Column("rows_bad", BigInteger, nullable=False, default=0),
    Column("errors", Text, doc="JSON list of {row, line, reason}, the first ones"),
    Column("message", Text, doc="why a file failed or was ignored"),
    Column("started_at", DateTime, nullable=False),
    Column("finished_at", DateTime),
    Column("details", Text, doc="JSON: header line, title rows, skipped rows, sheet, encoding (switch)"),
)

file_import_rows = Table(
    "file_import_rows",
    metadata,
    Column("import_id", Integer, primary_key=True, autoincrement=False),
    Column("row", BigInteger, primary_key=True, autoincrement=False),
    Column("line", BigInteger, nullable=False),
    Column("code", String(40), nullable=False, doc="reason code (connectors.files.messages)"),
    Column("column_name", String(500), doc="the file's column header the reason names"),
    Column("reason", Text, nullable=False, doc="English text; params render other languages"),
    Column("params", Text, doc="JSON params of the reason (quoted values masked when sensitive)"),
    Column("raw", Text, doc="the row as it stood in the file, decoded (bounded)"),
    Column("fields", Text, doc="JSON of the parsed fields by header, when the row parsed"),
)


def _now() -> datetime:
    return datetime.now(UTC).replace(tzinfo=None)


class ImportReports:
    def __init__(self, url: str):
        self.engine = engine_for(url)

    def begin(
        self,
        connector: str,
        path: str,
        size: int,
        mtime: float,
        checksum: str | None,
        status: str = "reading",
        message: str | None = None,
    ) -> int:
        with self.engine.begin() as conn:
            return conn.execute(
                insert(file_imports).values(
                    connector=connector,
                    path=path,
                    size=size,
                    mtime=mtime,
                    checksum=checksum,
                    status=status,
                    rows_read=0,
                    rows_ok=0,
                    rows_bad=0,
                    errors="[]",
                    message=message,
                    started_at=_now(),
                    finished_at=_now() if status != "reading" else None,
                )
            ).inserted_primary_key[0]

    def update(
        self,
        import_id: int,
        ok: int,
        bad: int,
        new_errors: list[dict],
        status: str,
        message: str | None = None,
        details: dict | None = None,
    ) -> None:
        with self.engine.begin() as conn:
            old = conn.execute(select(file_imports.c.errors).where(file_imports.c.id == import_id)).scalar()
            errors = json.loads(old) if old else []
            if len(errors) < MAX_ERRORS:
                errors += [_sample(e) for e in new_errors[: MAX_ERRORS - len(errors)]]
            values: dict[str, Any] = dict(
                rows_ok=ok,
                rows_bad=bad,
                rows_read=ok + bad,
                status=status,
                errors=json.dumps(errors, ensure_ascii=False, default=str),
            )
            if message is not None:
                values["message"] = message
            if details is not None:
                values["details"] = json.dumps(details, ensure_ascii=False, default=str)
            if status != "reading":
                values["finished_at"] = _now()
            conn.execute(file_imports.update().where(file_imports.c.id == import_id).values(**values))
            if new_errors:
                self._keep_rows(conn, import_id, new_errors)

    def _keep_rows(self, conn, import_id: int, errors: list[dict]) -> None:
        kept = conn.execute(
            select(func.count()).select_from(file_import_rows).where(file_import_rows.c.import_id == import_id)
        ).scalar()
        room = MAX_ROWS_KEPT - kept
        if room <= 0:
            return
        rows = errors[:room]
        # a batch published again after a crash reports its rows again: keep the first copy
        present = set(
            conn.execute(
                select(file_import_rows.c.row).where(
                    file_import_rows.c.import_id == import_id,
                    file_import_rows.c.row.in_([e["row"] for e in rows]),
                )
            ).scalars()
        )
        values = [
            {
                "import_id": import_id,
                "row": e["row"],
                "line": e["line"],
                "code": e.get("code") or "other",
                "column_name": (e.get("params") or {}).get("column"),
                "reason": e["reason"],
                "params": json.dumps(e.get("params") or {}, ensure_ascii=False, default=str),
                "raw": e.get("raw"),
                "fields": json.dumps(e["fields"], ensure_ascii=False, default=str) if e.get("fields") else None,
            }
            for e in rows
            if e["row"] not in present
        ]
        if values:
            conn.execute(insert(file_import_rows), values)

    def bad_rows(self, import_id: int, offset: int = 0, limit: int = 100, code: str | None = None) -> list[dict]:
        """The bad rows kept for an import, in file order."""
        stmt = (
            select(file_import_rows)
            .where(file_import_rows.c.import_id == import_id)
            .order_by(file_import_rows.c.row)
            .offset(offset)
            .limit(limit)
        )
        if code:
            stmt = stmt.where(file_import_rows.c.code == code)
        with self.engine.connect() as conn:
            rows = conn.execute(stmt).all()
        out = []
        for r in rows:
            d = dict(r._mapping)
            d["column"] = d.pop("column_name")
            d["params"] = json.loads(d["params"] or "{}")
            d["fields"] = json.loads(d["fields"]) if d["fields"] else None
            out.append(d)
        return out

    def reason_counts(self, import_id: int) -> tuple[int, list[dict]]:
        """(bad rows kept, [{code, column, count}]) most frequent first."""
        c = file_import_rows.c
        stmt = (
            select(c.code, c.column_name, func.count().label("n"))
            .where(c.import_id == import_id)
            .group_by(c.code, c.column_name)
            .order_by(func.count().desc(), c.code)
        )
        with self.engine.connect() as conn:
            groups = conn.execute(stmt).all()
        return sum(g.n for g in groups), [{"code": g.code, "column": g.column_name, "count": g.n} for g in groups]

    def notify(self, connector: str, import_id: int, path: str, status: str, message: str | None) -> None:
        """A message to the connector's tenant in the message centre: the import passed its bad-row ratio."""
        try:
            from connectors.store import connectors_table

            with self.engine.connect() as conn:
                tenant = conn.execute(
                    select(connectors_table.c.tenant).where(connectors_table.c.name == connector)
                ).scalar()
            post_message(
                self.engine,
                "import",
                "error" if status == "failed" else "warning",
                f"import {import_id} of {path.rsplit('/', 1)[-1]} ({connector}): {status}",
                f"{message or status}. Bad rows: GET /imports/{import_id}/rows, export "
                f"GET /imports/{import_id}/rows.csv or .xlsx.",
                tenant=tenant,
            )
        except Exception as exc:  # the report stands even when the message cannot be written
            log.warning("cannot raise the message of import %s: %s", import_id, exc)

    def get(self, import_id: int) -> dict | None:
        with self.engine.connect() as conn:
            row = conn.execute(select(file_imports).where(file_imports.c.id == import_id)).first()
        return _as_dict(row) if row else None

    def list(
        self, connector: str | None = None, status: str | None = None, limit: int = 100, connectors=None
    ) -> list[dict]:
        """Newest first; `connectors` (a list of names) limits the reports to those connectors."""
        stmt = select(file_imports).order_by(file_imports.c.id.desc()).limit(limit)
        if connectors is not None:
            stmt = stmt.where(file_imports.c.connector.in_(list(connectors)))
        if connector:
            stmt = stmt.where(file_imports.c.connector == connector)
        if status:
            stmt = stmt.where(file_imports.c.status == status)
        with self.engine.connect() as conn:
            rows = conn.execute(stmt).all()
        return [_as_dict(r, with_errors=False) for r in rows]


def _sample(e: dict) -> dict:
    """A bad row as the report's quick sample holds it: row, line, reason, code, params, raw content."""
    return {k: e.get(k) for k in ("row", "line", "reason", "code", "params", "raw") if e.get(k) is not None}


def _as_dict(row, with_errors: bool = True) -> dict:
    d = dict(row._mapping)
    d["details"] = json.loads(d["details"]) if d.get("details") else {}
    d["errors"] = json.loads(d["errors"] or "[]") if with_errors else None
    for k in ("started_at", "finished_at"):
        d[k] = d[k].isoformat() if d[k] else None
    if not with_errors:
        d.pop("errors")
    return d
