"""Connector work that takes a while, as message-centre jobs: a snapshot followed to its end, a
one-off file import. The API stays thin: the snapshot is done by the connector's worker (the job
only watches the control database); the import runs the file source here, in a job thread.
"""

from __future__ import annotations

import fnmatch
import time
from pathlib import Path, PurePosixPath

from api.jobs import JobContext
from connectors import paths
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


def unknown_snapshot_tables(record: ConnectorRecord, tables: list[str], offsets: OffsetStore) -> list[str]:
    """The requested tables a snapshot of this connector cannot re-read, where its tables are known:
    a file connector's are its files' offset partitions (`file:<path>`), a single-table mode's its
    `table` (and its stored partitions). Modes selecting tables by pattern are not checked."""
    if not tables:
        return []
    if record.plugin == "files":
        known = set(offsets.load_all())
    elif isinstance(record.config.get("table"), str) and not record.config.get("include"):
        partitions = set(offsets.load_all())
        known = partitions | {p.rsplit(".", 1)[-1] for p in partitions} | {record.config["table"]}
    else:
        return []
    return [t for t in tables if t not in known]


class ImportRefused(ValueError):
    def __init__(self, message: str, status: int = 422):
        super().__init__(message)
        self.status = status  # 409: conflicts with the connector's own task


def import_root(record: ConnectorRecord, settings) -> Path:
    """The data root a connector's files must stay in: its tenant's (no tenant: the whole root)."""
    tenant = getattr(record, "tenant", None)
    return paths.root_for(settings, tenant, superuser=tenant is None)


def _store_root(record: ConnectorRecord, settings) -> Path:
    store = record.config.get("store") or {}
    if store.get("kind", "local") != "local":
        raise ImportRefused(f"connector {record.name} does not read a local directory")
    try:
        return paths.resolve_inside(import_root(record, settings), str(store.get("root", "")), "store.root", settings)
    except paths.PathRefused as exc:
        raise ImportRefused(f"connector {record.name}: {exc}") from None


def glob_matches(path: str, pattern: str) -> bool:
    """Whether `path` (relative, '/'-separated) is one the connector's `store.pattern` lists, with
    Path.glob's rules: each segment is matched alone (`*.csv` does not reach into subfolders) and
    `**` stands for any number of folders."""

    def match(parts: tuple[str, ...], pats: tuple[str, ...]) -> bool:
        if not pats:
            return not parts
        if pats[0] == "**":
            return any(match(parts[i:], pats[1:]) for i in range(len(parts) + 1))
        return bool(parts) and fnmatch.fnmatchcase(parts[0], pats[0]) and match(parts[1:], pats[1:])

    return match(PurePosixPath(path).parts, PurePosixPath(pattern).parts)


def _once_finished(record: ConnectorRecord, settings) -> bool:
    """A `mode: once` connector is done when it stored offsets and every file's says `done`: it
    lists its directory only once, so it will not read anything else."""
    offsets = OffsetStore(settings.resolved_control_db_url, record.name).load_all()
    files = [o for p, o in offsets.items() if p.startswith("file:")]
    return bool(files) and all(o.get("done") for o in files)


def check_import(record: ConnectorRecord, path: str, settings=None) -> None:
    """Raise ImportRefused unless `path` is a file (or glob) below a file connector's root (itself
    inside the tenant's data root) that its own task would not pick up meanwhile (both would read
    it under the same tracking): 409 only while the connector runs, its pattern lists the path
    (glob rules: not subfolders a `*.csv` does not reach) and, in `mode: once`, it has not finished."""
    if record.plugin != "files":
        raise ImportRefused(f"connector {record.name} is not a file connector")
    parts = PurePosixPath(path).parts
    if not path.strip() or PurePosixPath(path).is_absolute() or ".." in parts or "\x00" in path:
        raise ImportRefused("path must be relative to the connector's store root, without '..'")
    if settings is None:
        from deploy.settings import get_settings

        settings = get_settings()
    _store_root(record, settings)
    pattern = (record.config.get("store") or {}).get("pattern", "*")
    if record.target_state != "RUNNING" or not _may_overlap(path, pattern):
        return
    if record.config.get("mode") == "once" and _once_finished(record, settings):
        return
    raise ImportRefused(f"connector {record.name} is running and imports {path!r} itself; pause it first", 409)


def _may_overlap(path: str, pattern: str) -> bool:
    """`path` (a file or a glob) names files the pattern lists: the path itself matches, or, for a
    glob, segment by segment each pair could name the same name (literal ones equal, a literal
    matching a glob, two globs)."""
    if glob_matches(path, pattern):
        return True
    if not any(c in path for c in "*?["):
        return False
    parts, pats = PurePosixPath(path).parts, PurePosixPath(pattern).parts
    if "**" in pats or "**" in parts:
        return True
    if len(parts) != len(pats):
        return False

    def wild(s: str) -> bool:
        return any(c in s for c in "*?[")

    return all(
        (wild(a) and wild(b)) or (fnmatch.fnmatchcase(a, b) if not wild(a) else fnmatch.fnmatchcase(b, a))
        for a, b in zip(parts, pats)
    )


def import_files(ctx: JobContext, settings, record: ConnectorRecord, path: str, force: bool = False) -> dict:
    """Read the files matching `path` once, under the connector's tracking: a file it already
    imported unchanged is not read again unless `force`, or the connector's `format`/`columns`
    changed since (then it is read again as a new import); the result holds each file's import
    report and `unchanged`, the files not read again."""
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
        update={
            "mode": "once",
            "settle_seconds": 0,
            "reread_on_format_change": True,
            "ready_marker": None,  # the caller says the file is complete
            "store": cfg.store.model_copy(update={"pattern": path}),
        }
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
    root, data = _store_root(record, settings), import_root(record, settings)
    try:
        # every matching file must resolve (symlinks followed) inside the store root and the
        # tenant's data root, outside the server's state; others are not read at all
        listed = task.store.list()
        files = [f for f in listed if _readable(f.path, root, data, settings)]
        skipped = len(listed) - len(files)
        if skipped:
            task.store.list = lambda: files  # the runtime lists again: only what passed
        ctx.progress(0, f"{len(files)} files to import")
        runtime.start()
        before = {f.path: (task.tracked.get(f.path) or {}).get("import_id") for f in files}
        if force:
            task.force = {f.path for f in files}
        while runtime.run_once():  # a poll without events: every matching file is read
            ctx.check_cancelled()
            done = sum(1 for f in files if task.tracked.get(f.path, {}).get("done"))
            ctx.progress(100 * done / max(1, len(files)), f"{done}/{len(files)} files read")
    finally:
        task.close()
    reports = ImportReports(settings.resolved_control_db_url)
    imports = [reports.get(task.tracked[f.path]["import_id"]) for f in files if f.path in task.tracked]
    unchanged = [
        f.path for f in files if f.path in task.tracked and task.tracked[f.path].get("import_id") == before[f.path]
    ]
    fresh = [i for i in imports if i and i["path"] not in unchanged]
    ok, bad = sum(i["rows_ok"] for i in fresh), sum(i["rows_bad"] for i in fresh)
    statuses = sorted({i["status"] for i in fresh})
    message = f"{len(fresh)} of {len(files)} files imported: {ok} rows ok, {bad} bad" + (
        f" ({', '.join(statuses)})" if statuses else ""
    )
    if unchanged:
        message += f"; {len(unchanged)} already imported unchanged, not read again (force: true reads them again)"
    ctx.progress(100, message)
    result = {"connector": record.name, "path": path, "imports": imports, "unchanged": unchanged}
    if skipped:
        result["refused"] = skipped  # matched, but outside the root (e.g. a symlink): not read
    return result


def _readable(file: str, root: Path, data: Path, settings) -> bool:
    try:
        inside = paths.resolve_inside(data, file, "path", settings)
    except paths.PathRefused:
        return False
    return inside.is_relative_to(root)
