"""Persistence of background jobs in the control DB (own table set; deploy/control.py stays untouched)."""

from __future__ import annotations

import json
import time
from typing import Any

from sqlalchemy import Column, Float, Integer, MetaData, String, Table, Text, select
from sqlalchemy.engine import Engine

from deploy.control import engine_for

metadata = MetaData()

jobs = Table(
    "jobs",
    metadata,
    Column("id", String(40), primary_key=True),
    Column("type", String(100), nullable=False),
    Column("operator", String(200), nullable=False),
    Column("state", String(20), nullable=False, doc="queued|running|succeeded|failed|cancelled|interrupted"),
    Column("progress", Float, nullable=False, default=0.0),
    Column("message", Text),
    Column("result", Text, doc="JSON"),
    Column("error", Text),
    Column("owner", String(200), doc="host:pid:token of the API process running it"),
    Column("cancel_requested", Integer, nullable=False, default=0),
    Column("created_at", Float, nullable=False),
    Column("started_at", Float),
    Column("finished_at", Float),
    Column("heartbeat_at", Float),
)

ACTIVE = ("queued", "running")


def jobs_engine(url: str) -> Engine:
    return engine_for(url)  # its tables come from the migrations


def iso_time(ts: float | None) -> str | None:
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(ts)) + f".{int(ts % 1 * 1000):03d}Z" if ts else None


def epoch(iso: str) -> float:
    """Inverse of iso_time (UTC, milliseconds)."""
    import calendar

    return calendar.timegm(time.strptime(iso[:19], "%Y-%m-%dT%H:%M:%S")) + float("0" + iso[19:23])


def row_to_dict(row) -> dict[str, Any]:
    d = dict(row._mapping)
    d["result"] = json.loads(d["result"]) if d["result"] else None
    d["cancel_requested"] = bool(d["cancel_requested"])
    for k in ("created_at", "started_at", "finished_at", "heartbeat_at"):
        d[k] = iso_time(d[k])
    d["progress"] = round(d["progress"] or 0.0, 1)
    return d


class JobStore:
    def __init__(self, url: str):
        self.engine = jobs_engine(url)

    def insert(self, **values) -> None:
        with self.engine.begin() as conn:
            conn.execute(jobs.insert().values(**values))

    def update(self, job_id: str, only_if_active: bool = False, **values) -> bool:
        stmt = jobs.update().where(jobs.c.id == job_id)
        if only_if_active:  # never overwrite a final state (e.g. a cancel that won the race)
            stmt = stmt.where(jobs.c.state.in_(ACTIVE))
        with self.engine.begin() as conn:
            return conn.execute(stmt.values(**values)).rowcount > 0

    def get(self, job_id: str) -> dict | None:
        with self.engine.connect() as conn:
            row = conn.execute(select(jobs).where(jobs.c.id == job_id)).first()
        return row_to_dict(row) if row else None

    def cancel_requested(self, job_id: str) -> bool:
        with self.engine.connect() as conn:
            return bool(conn.execute(select(jobs.c.cancel_requested).where(jobs.c.id == job_id)).scalar())

    def list(
        self, state: str | None = None, type_: str | None = None, limit: int = 100, operator: str | None = None
    ) -> list[dict]:
        q = select(jobs).order_by(jobs.c.created_at.desc()).limit(limit)
        if operator:
            q = q.where(jobs.c.operator == operator)
        if state:
            q = q.where(jobs.c.state == state)
        if type_:
            q = q.where(jobs.c.type == type_)
        with self.engine.connect() as conn:
            return [row_to_dict(r) for r in conn.execute(q).all()]

    def active(self) -> list[tuple[str, str | None, float | None]]:
        with self.engine.connect() as conn:
            return [
                tuple(r)
                for r in conn.execute(
                    select(jobs.c.id, jobs.c.owner, jobs.c.heartbeat_at).where(jobs.c.state.in_(ACTIVE))
                ).all()
            ]

    def counts(self) -> dict[tuple[str, str], int]:
        from sqlalchemy import func

        with self.engine.connect() as conn:
            rows = conn.execute(
                select(jobs.c.type, jobs.c.state, func.count()).group_by(jobs.c.type, jobs.c.state)
            ).all()
        return {(t, s): int(n) for t, s, n in rows}
