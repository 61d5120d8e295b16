"""Import reports: one row per file import (rows read, ok, bad, a sample of bad rows) in the control DB.

Written by the file source in `committed()`, i.e. only for rows that are durable in Kafka, and
read by the API (`api/routers/imports.py`). Every bad row also goes to the quarantine topic with
its file, line and reason; the sample here is the first `MAX_ERRORS` for a quick look.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import BigInteger, Column, DateTime, Float, Integer, MetaData, String, Table, Text, insert, select

from deploy.control import engine_for

MAX_ERRORS = 100
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
    Column("status", String(20), nullable=False, doc="reading, done, failed, changed_ignored"),
    Column("rows_read", BigInteger, nullable=False, default=0),
    Column("rows_ok", BigInteger, nullable=False, default=0),
    Column("rows_bad", BigInteger, nullable=False, default=0),
    Column("errors", Text, doc="JSON list of {row, line, reason}, the first ones"),
    Column("message", Text, doc="why a file failed or was ignored"),
    Column("started_at", DateTime, nullable=False),
    Column("finished_at", DateTime),
)


def _now() -> datetime:
    return datetime.now(UTC).replace(tzinfo=None)


class ImportReports:
    def __init__(self, url: str):
        self.engine = engine_for(url)
        metadata.create_all(self.engine)

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
        self, import_id: int, ok: int, bad: int, new_errors: list[dict], status: str, message: str | None = None
    ) -> None:
        with self.engine.begin() as conn:
            old = conn.execute(select(file_imports.c.errors).where(file_imports.c.id == import_id)).scalar()
            errors = (json.loads(old) if old else []) + new_errors
            values: dict[str, Any] = dict(
                rows_ok=ok,
                rows_bad=bad,
                rows_read=ok + bad,
                status=status,
                errors=json.dumps(errors[:MAX_ERRORS], ensure_ascii=False),
            )
            if message is not None:
                values["message"] = message
            if status != "reading":
                values["finished_at"] = _now()
            conn.execute(file_imports.update().where(file_imports.c.id == import_id).values(**values))

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


def _as_dict(row, with_errors: bool = True) -> dict:
    d = dict(row._mapping)
    d["errors"] = json.loads(d["errors"] or "[]") if with_errors else None
    for k in ("started_at", "finished_at"):
        d[k] = d[k].isoformat() if d[k] else None
    if not with_errors:
        d.pop("errors")
    return d
