"""The control database: source offsets and per-stage counters (SQLite by default, PostgreSQL in production).

Offsets live here rather than in each connector (the Kafka Connect split: the runtime stores
offsets). A source writes its offset only after the broker acknowledged the events it covers.
"""

from __future__ import annotations

import json
import logging
import os
import sqlite3
from functools import lru_cache
from pathlib import Path
from typing import Any

from sqlalchemy import BigInteger, Column, MetaData, String, Table, Text, create_engine, event, select
from sqlalchemy.engine import Engine, make_url

from deploy.migrate import ensure_current

log = logging.getLogger(__name__)
metadata = MetaData()

source_offsets = Table(
    "source_offsets",
    metadata,
    Column("connector", String(200), primary_key=True),
    Column("partition", String(400), primary_key=True, doc="e.g. the table a task reads"),
    Column("offset", Text, nullable=False, doc="JSON"),
)

stage_counters = Table(
    "stage_counters",
    metadata,
    Column("pipeline", String(200), primary_key=True),
    Column("stage", String(50), primary_key=True),
    Column("metric", String(100), primary_key=True),
    Column("value", BigInteger, nullable=False, default=0),
)


# WAL: the API, workers and sources are separate processes; in WAL mode readers never wait for
# the writer. Known risk: SQLite 3.7.0 to 3.51.2 has the "WAL-reset bug" (fixed in 3.51.3), a rare
# corruption when connections of several processes write and checkpoint at the same moment;
# Debian ships 3.40.1. The rollback journal avoids it but lets one slow reader block every
# writer (tried: workers killed mid-write then locked the API out), so a deployment with many
# processes should use PostgreSQL as the control DB (HUILIU_CONTROL_DB_URL), as the tests do.
SQLITE_WAL_SAFE = sqlite3.sqlite_version_info >= (3, 51, 3)


def _sqlite_pragmas(conn, _record) -> None:
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute("PRAGMA busy_timeout=10000")  # several processes share the file: wait for a turn


def private_sqlite_file(url: str) -> Path | None:
    """The control DB holds password hashes, key hashes and sealed secrets: its file is created
    0600 before SQLite opens it (SQLite gives the -wal and -shm files the database file's mode),
    and an existing file readable by others is tightened, with its -wal/-shm."""
    u = make_url(url)
    if u.get_backend_name() != "sqlite" or not u.database or u.database == ":memory:":
        return None
    path = Path(u.database)
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        os.close(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600))
    except FileExistsError:
        pass
    for p in (path, Path(f"{path}-wal"), Path(f"{path}-shm")):
        try:
            if p.stat().st_mode & 0o077:
                p.chmod(0o600)
        except FileNotFoundError:
            pass
        except PermissionError:  # not ours to change: say so, do not stop the service
            log.warning("control DB file %s is readable by others and cannot be changed", p)
    return path


@lru_cache(maxsize=8)
def engine_for(url: str) -> Engine:
    private_sqlite_file(url)
    engine = create_engine(url, future=True, pool_pre_ping=True)
    if url.startswith("sqlite"):
        event.listen(engine, "connect", _sqlite_pragmas)
        if not SQLITE_WAL_SAFE:
            log.info(
                "control DB on SQLite %s (WAL-reset bug before 3.51.3): use PostgreSQL when many processes share it",
                sqlite3.sqlite_version,
            )
    ensure_current(engine)  # the control DB's tables come from the migrations (deploy/migrations)
    return engine


class OffsetStore:
    def __init__(self, url: str, connector: str):
        self.engine = engine_for(url)
        self.connector = connector

    def load(self, partition: str) -> dict[str, Any] | None:
        with self.engine.connect() as conn:
            row = conn.execute(
                select(source_offsets.c.offset).where(
                    source_offsets.c.connector == self.connector, source_offsets.c.partition == partition
                )
            ).first()
        return json.loads(row[0]) if row else None

    def load_all(self) -> dict[str, dict[str, Any]]:
        with self.engine.connect() as conn:
            rows = conn.execute(
                select(source_offsets.c.partition, source_offsets.c.offset).where(
                    source_offsets.c.connector == self.connector
                )
            ).all()
        return {p: json.loads(o) for p, o in rows}

    def save(self, partition: str, offset: dict[str, Any]) -> None:
        text = json.dumps(offset, default=str)
        with self.engine.begin() as conn:
            updated = conn.execute(
                source_offsets.update()
                .where(source_offsets.c.connector == self.connector, source_offsets.c.partition == partition)
                .values(offset=text)
            ).rowcount
            if not updated:
                conn.execute(source_offsets.insert().values(connector=self.connector, partition=partition, offset=text))

    def clear(self) -> None:
        with self.engine.begin() as conn:
            conn.execute(source_offsets.delete().where(source_offsets.c.connector == self.connector))


class StageCounters:
    """Cumulative counts per pipeline stage (read, valid, quarantined, written...)."""

    def __init__(self, url: str, pipeline: str):
        self.engine = engine_for(url)
        self.pipeline = pipeline

    def add(self, stage: str, counts: dict[str, int]) -> None:
        with self.engine.begin() as conn:
            for metric, n in counts.items():
                if not n:
                    continue
                where = (
                    (stage_counters.c.pipeline == self.pipeline)
                    & (stage_counters.c.stage == stage)
                    & (stage_counters.c.metric == metric)
                )
                updated = conn.execute(
                    stage_counters.update().where(where).values(value=stage_counters.c.value + n)
                ).rowcount
                if not updated:
                    conn.execute(
                        stage_counters.insert().values(pipeline=self.pipeline, stage=stage, metric=metric, value=n)
                    )

    def reset(self) -> None:
        with self.engine.begin() as conn:
            conn.execute(stage_counters.delete().where(stage_counters.c.pipeline == self.pipeline))

    def read(self) -> dict[str, dict[str, int]]:
        with self.engine.connect() as conn:
            rows = conn.execute(
                select(stage_counters.c.stage, stage_counters.c.metric, stage_counters.c.value).where(
                    stage_counters.c.pipeline == self.pipeline
                )
            ).all()
        result: dict[str, dict[str, int]] = {}
        for stage, metric, value in rows:
            result.setdefault(stage, {})[metric] = int(value)
        return result
