"""Connector work that takes a while, as message-centre jobs: a snapshot followed to its end, a
one-off file import. The API stays thin: the snapshot is done by the connector's worker (the job
only watches the control database); the import runs the file source here, in a job thread.
"""

from __future__ import annotations

import fnmatch
import time
from pathlib import PurePosixPath

from api.jobs import JobContext
from connectors.store import ConnectorRecord, ConnectorStore
from deploy.control import OffsetStore

POLL_SECONDS = 0.5


def _finished(offset: dict | None) -> bool:
    """A re-read partition is finished when its offset says so (`done` for snapshot-mode chunks,
    `snapshot_done` for capture modes); a mode with neither flag counts once it stored an offset."""
    return offset is not None and bool(offset.get("done", offset.get("snapshot_done", True)))


def follow_snapshot(ctx: JobContext, store: ConnectorStore, offsets: OffsetStore, snapshot_id: int) -> dict:
    """Wait until a worker cleared the offsets (status DONE), then until the task has read the
    cleared tables again; fails when the connector is deleted meanwhile."""
    connector = offsets.connector
    ctx.progress(0, "waiting for the connector's worker to take the request")
    while True:
        ctx.check_cancelled()
        snap = next((s for s in store.snapshots(connector) if s["id"] == snapshot_id), None)
        if snap is None:
            raise RuntimeError(f"connector {connector} was deleted before its snapshot was read again")
        if snap["status"] == "DONE":
            cleared, found = snap["cleared"], offsets.load_all()
            done = [p for p in cleared if _finished(found.get(p))]
            rows = {p: (found.get(p) or {}).get("rows") for p in cleared}
            counted = sum(n for n in rows.values() if n)
            ctx.progress(
                10 + 90 * len(done) / max(1, len(cleared)),
                f"{len(done)}/{len(cleared)} tables read again" + (f", {counted} rows" if counted else ""),
            )
            if len(done) == len(cleared):
                return {"connector": connector, "snapshot": snapshot_id, "cleared": cleared, "rows": rows}
        time.sleep(POLL_SECONDS)


class ImportRefused(ValueError):
    def __init__(self, message: str, status: int = 422):
        super().__init__(message)
        self.status = status  # 409: conflicts with the connector's own task


def check_import(record: ConnectorRecord, path: str) -> None:
    """Raise ImportRefused unless `path` is a file (or glob) below a file connector's root that its
    own task would not pick up meanwhile (both would read it under the same tracking)."""
    if record.plugin != "files":
        raise ImportRefused(f"connector {record.name} is not a file connector")
    parts = PurePosixPath(path).parts
    if not path.strip() or PurePosixPath(path).is_absolute() or ".." in parts:
        raise ImportRefused("path must be relative to the connector's store root, without '..'")
    pattern = (record.config.get("store") or {}).get("pattern", "*")
    if record.target_state == "RUNNING" and fnmatch.fnmatch(path, pattern):
        raise ImportRefused(f"connector {record.name} is running and imports {path!r} itself; pause it first", 409)


def import_files(ctx: JobContext, settings, record: ConnectorRecord, path: str) -> dict:
    """Read the files matching `path` once, under the connector's tracking: a file it already
    imported unchanged is not read again; the result holds each file's import report."""
    from connectors.document import parse
    from connectors.files.reports import ImportReports
    from connectors.files.source import FileSourceTask
    from connectors.runtime import SourceRuntime
    from schemas.serde import WireCodec

    spec, errors = parse(record.name, record.config, settings)
    if spec is None:
        raise ImportRefused("; ".join(f"{e.field}: {e.message}" for e in errors))
    cfg = spec.plugin_config
    cfg = cfg.model_copy(
        update={"mode": "once", "settle_seconds": 0, "store": cfg.store.model_copy(update={"pattern": path})}
    )
    task = FileSourceTask(cfg)
    runtime = SourceRuntime(
        task,
        bootstrap=settings.kafka_bootstrap,
        codec=WireCodec(settings.schema_registry_url),
        control_db_url=settings.resolved_control_db_url,
        topic_prefix=cfg.topic_prefix,
        partitions=cfg.partitions,
    )
    try:
        files = task.store.list()
        ctx.progress(0, f"{len(files)} files to import")
        while runtime.run_once():  # a poll without events: every matching file is read
            ctx.check_cancelled()
            done = sum(1 for f in files if task.tracked.get(f.path, {}).get("done"))
            ctx.progress(100 * done / max(1, len(files)), f"{done}/{len(files)} files imported")
    finally:
        task.close()
    reports = ImportReports(settings.resolved_control_db_url)
    imports = [reports.get(task.tracked[f.path]["import_id"]) for f in files if f.path in task.tracked]
    return {"connector": record.name, "path": path, "imports": imports}
