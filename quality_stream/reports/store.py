"""Reports with their history, subscriptions and profiles in the control DB (quality_stream/reports/tables.py).
Every read and write names the tenant scope; another tenant's id reads as unknown (NotFound)."""

from __future__ import annotations

import json
import time
from typing import Any

from sqlalchemy import delete, insert, select

from quality_stream.reports.tables import quality_profiles, quality_report_subscriptions, quality_reports

SUMMARY = [c for c in quality_reports.c if c.name not in ("html", "pdf", "summary")]


class NotFound(LookupError):
    pass


class ReportStore:
    def __init__(self, engine):
        self.engine = engine

    # -- reports
    def save(self, scope: str, kind: str, target: str, period: str, data: dict, html: str, pdf: bytes, by: str) -> dict:
        import datetime as dt

        def ts(day: str) -> float:
            return dt.datetime.fromisoformat(day).replace(tzinfo=dt.UTC).timestamp()

        row = {
            "scope": scope,
            "kind": kind,
            "target": target,
            "period": period,
            "period_start": ts(data["start"]),
            "period_end": ts(data["end"]),
            "created_at": time.time(),
            "created_by": by,
            "summary": json.dumps(data, ensure_ascii=False),
            "html": html,
            "pdf": pdf,
        }
        with self.engine.begin() as conn:
            rid = conn.execute(insert(quality_reports).values(**row)).inserted_primary_key[0]
        return self.get(scope, rid)

    def list(self, scope: str, kind: str | None = None, target: str | None = None, limit: int = 50, offset: int = 0):
        q = select(*SUMMARY).where(quality_reports.c.scope == scope)
        if kind:
            q = q.where(quality_reports.c.kind == kind)
        if target:
            q = q.where(quality_reports.c.target == target)
        with self.engine.connect() as conn:
            rows = conn.execute(q.order_by(quality_reports.c.id.desc()).limit(limit).offset(offset)).all()
        return [dict(r._mapping) for r in rows]

    def _one(self, scope: str, rid: int, *cols):
        with self.engine.connect() as conn:
            row = conn.execute(
                select(*cols).where(quality_reports.c.scope == scope, quality_reports.c.id == rid)
            ).first()
        if row is None:
            raise NotFound(f"no report {rid} / 没有报告 {rid}")
        return row

    def get(self, scope: str, rid: int) -> dict[str, Any]:
        row = self._one(scope, rid, *SUMMARY, quality_reports.c.summary)
        out = dict(row._mapping)
        out["summary"] = json.loads(out["summary"])
        return out

    def html(self, scope: str, rid: int) -> str:
        return self._one(scope, rid, quality_reports.c.html)[0]

    def pdf(self, scope: str, rid: int) -> bytes:
        return self._one(scope, rid, quality_reports.c.pdf)[0]

    # -- subscriptions
    def subscribe(self, scope: str, kind: str, target: str, period: str, channel: dict, by: str) -> dict:
        row = dict(
            scope=scope,
            kind=kind,
            target=target,
            period=period,
            channel=json.dumps(channel),
            created_by=by,
            created_at=time.time(),
        )
        with self.engine.begin() as conn:
            sid = conn.execute(insert(quality_report_subscriptions).values(**row)).inserted_primary_key[0]
        return self._subscription({**row, "id": sid})

    @staticmethod
    def _subscription(row: dict, secrets: bool = False) -> dict:
        out = dict(row)
        channel = json.loads(out["channel"])
        if not secrets:
            channel.pop("password", None)
        out["channel"] = channel
        return out

    def subscriptions(self, scope: str, kind=None, target=None, period=None, secrets: bool = False) -> list[dict]:
        t = quality_report_subscriptions
        q = select(t).where(t.c.scope == scope)
        for col, value in (("kind", kind), ("target", target), ("period", period)):
            if value is not None:
                q = q.where(t.c[col] == value)
        with self.engine.connect() as conn:
            rows = conn.execute(q.order_by(t.c.id)).all()
        return [self._subscription(dict(r._mapping), secrets) for r in rows]

    def unsubscribe(self, scope: str, sid: int) -> None:
        t = quality_report_subscriptions
        with self.engine.begin() as conn:
            if not conn.execute(delete(t).where(t.c.scope == scope, t.c.id == sid)).rowcount:
                raise NotFound(f"no subscription {sid} / 没有订阅 {sid}")

    # -- profiles
    def save_profile(
        self, scope: str, urn: str, version: int, table: str, profile: dict, suggestions: list, by: str
    ) -> dict:
        row = dict(
            scope=scope,
            dataset_urn=urn,
            dataset_version=version,
            table_name=table,
            profile=json.dumps(profile, ensure_ascii=False, default=str),
            suggestions=json.dumps(suggestions, ensure_ascii=False, default=str),
            created_at=time.time(),
            created_by=by,
        )
        with self.engine.begin() as conn:
            pid = conn.execute(insert(quality_profiles).values(**row)).inserted_primary_key[0]
        return self._profile({**row, "id": pid})

    @staticmethod
    def _profile(row: dict) -> dict:
        out = dict(row)
        out["profile"] = json.loads(out["profile"])
        out["suggestions"] = json.loads(out["suggestions"])
        return out

    def profiles(self, scope: str, urn: str, version: int | None = None) -> list[dict]:
        t = quality_profiles
        q = select(t).where(t.c.scope == scope, t.c.dataset_urn == urn)
        if version is not None:
            q = q.where(t.c.dataset_version == version)
        with self.engine.connect() as conn:
            rows = conn.execute(q.order_by(t.c.id.desc()).limit(20)).all()
        return [self._profile(dict(r._mapping)) for r in rows]
