"""Download jobs of the control DB (migration 0012_service_sharing): one row per export an
application asked for as a job, kept per `scope` (the service's tenant) and its app `key_id`, so
only the key that asked reads its state; the file lives under the state directory until its link
expires.

    store = DownloadStore(engine)
    row = store.create(scope, key_id, application, service, version, fmt, params, link_ttl_s)
    store.update(download_id, state=..., rows=..., path=..., expires_at=...)
    store.get(download_id) -> dict | None;  store.expired(now) -> rows whose files may go
    run_export(store, row, plan, clickhouse, path, control_url, progress)   # the job's body
"""

from __future__ import annotations

import json
import time
import uuid
from typing import Any

from sqlalchemy import Column, Float, Index, Integer, MetaData, String, Table, Text, select, update
from sqlalchemy.engine import Engine

metadata = MetaData()

ds_downloads = Table(
    "ds_downloads",
    metadata,
    Column("id", String(40), primary_key=True),
    Column("scope", String(100), nullable=False),
    Column("key_id", String(40), nullable=False, doc="the app key that asked; only it reads the state"),
    Column("application", String(100), nullable=False),
    Column("service", String(100), nullable=False),
    Column("version", Integer, nullable=False),
    Column("format", String(10), nullable=False),
    Column("params", Text, nullable=False, doc="the filters asked for, JSON pairs"),
    Column("state", String(20), nullable=False, doc="queued | running | ready | failed"),
    Column("job_id", String(40), doc="the message centre's job"),
    Column("rows", Integer),
    Column("bytes", Integer),
    Column("path", String(500)),
    Column("error", Text),
    Column("link_ttl_s", Integer, nullable=False),
    Column("created_at", Float, nullable=False),
    Column("finished_at", Float),
    Column("expires_at", Float, doc="the link's end (finished_at + link_ttl_s)"),
    Index("ix_ds_downloads_key", "key_id"),
)


class DownloadStore:
    def __init__(self, engine: Engine):
        self.engine = engine

    def create(self, scope, key_id, application, service, version, fmt, params, link_ttl_s) -> dict[str, Any]:
        row = {
            "id": uuid.uuid4().hex,
            "scope": scope,
            "key_id": key_id,
            "application": application,
            "service": service,
            "version": version,
            "format": fmt,
            "params": json.dumps(params, ensure_ascii=False),
            "state": "queued",
            "link_ttl_s": int(link_ttl_s),
            "created_at": time.time(),
        }
        with self.engine.begin() as conn:
            conn.execute(ds_downloads.insert().values(**row))
        return self.get(row["id"])

    def update(self, download_id: str, **values) -> None:
        with self.engine.begin() as conn:
            conn.execute(update(ds_downloads).where(ds_downloads.c.id == download_id).values(**values))

    def get(self, download_id: str) -> dict[str, Any] | None:
        with self.engine.connect() as conn:
            row = conn.execute(select(ds_downloads).where(ds_downloads.c.id == download_id)).first()
        if row is None:
            return None
        out = dict(row._mapping)
        out["params"] = json.loads(out["params"])
        return out

    def expired(self, now: float) -> list[dict[str, Any]]:
        with self.engine.connect() as conn:
            rows = conn.execute(
                select(ds_downloads.c.id, ds_downloads.c.path).where(
                    ds_downloads.c.expires_at < now, ds_downloads.c.path.is_not(None)
                )
            ).all()
        return [dict(r._mapping) for r in rows]


def run_export(store: DownloadStore, row: dict, plan, clickhouse, path, control_url: str, progress) -> dict[str, Any]:
    """Write the export of `row` (a download job) to `path`: state running, progress in rows
    (`progress(n, total)`, which may raise to cancel), then ready with rows, bytes and the link's
    expiry, and a message in the message centre; failed (file removed) on any error, re-raised."""
    from deploy.messages import post_message
    from streams.dataservices import downloads as dl  # here: the table module stays light for migrations

    try:
        store.update(row["id"], state="running")
        total = max(1, dl.count(clickhouse, plan))
        n = dl.write_file(row["format"], plan, dl.batches(clickhouse, plan), str(path), lambda k: progress(k, total))
    except Exception as exc:
        path.unlink(missing_ok=True)
        reason = getattr(exc, "message", None) or type(exc).__name__
        store.update(row["id"], state="failed", error=reason[:500], finished_at=time.time())
        raise
    now = time.time()
    store.update(
        row["id"],
        state="ready",
        rows=n,
        bytes=path.stat().st_size,
        path=str(path),
        finished_at=now,
        expires_at=now + row["link_ttl_s"],
    )
    post_message(
        control_url,
        "download",
        "info",
        f"下载已就绪 / download ready: {row['service']} v{row['version']} ({row['format']}, {n} rows) "
        f"for {row['application']}",
        f"GET /service-downloads/{row['id']} (link valid {row['link_ttl_s']} s)",
        tenant=row["scope"] or None,
    )
    return {"download": row["id"], "rows": n}
