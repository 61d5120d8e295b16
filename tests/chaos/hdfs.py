"""The HDFS side of a chaos run: a single-node cluster of the run's own (when Java is here), the HDFS
sink as a second sink of the clean topic, and its files read back for the checks.

The end check reads every file under the sink's root: each (id, sequence) of the clean stream must
be there exactly once (the topic carries copies after a runner or source was killed; the sink skips
them, sinks/hdfs/README.md), and the latest row per id (highest `_sequence`, a delete ends the row)
must be the load's last valid version, what ClickHouse must hold.
"""

from __future__ import annotations

import io
import shutil
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

import polars as pl

SINK = "chaos-hdfs"  # the connector; its name starts with the pipeline's, so its task is checked too
ROOT = "/chaos"
PORT_OFFSET = 60  # five ports from the run's port base + 60 (its stack takes +0 .. +57, +81, +92, +100)
COLUMNS = ["id", "name", "phone", "_op", "_sequence", "_offset"]


def webhdfs_url(port_base: int) -> str:
    return f"http://127.0.0.1:{port_base + PORT_OFFSET + 1}"  # HdfsCluster.from_port_base: NameNode HTTP second


def unavailable() -> str | None:
    """Why this machine cannot run HDFS, or None."""
    if shutil.which("java") is None:
        return "java is not installed (the NameNode and DataNode need a JVM)"
    from deploy.hdfs import jars

    try:
        jars.ensure_jars()
    except jars.JarsUnavailable as exc:
        return f"the Hadoop jars cannot be fetched: {exc}"
    return None


class RunCluster:
    """The run's HDFS cluster, started on a thread while the stack comes up (start-up costs 20-60 s)."""

    def __init__(self, base_dir: Path, port_base: int):
        from deploy.hdfs.cluster import HdfsCluster

        self.cluster = HdfsCluster.from_port_base(base_dir, port_base + PORT_OFFSET)
        self.started_after: float | None = None
        self._error: BaseException | None = None
        self._thread = threading.Thread(target=self._start, name="chaos-hdfs-start", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def _start(self) -> None:
        began = time.monotonic()
        try:
            self.cluster.start()
            self.started_after = round(time.monotonic() - began, 1)
        except BaseException as exc:  # noqa: BLE001 - raised in the run's thread by wait()
            self._error = exc

    def wait(self) -> None:
        self._thread.join()
        if self._error is not None:
            raise self._error

    def stop(self) -> None:
        if self._thread.is_alive():
            self._thread.join(240)
        self.cluster.stop()

    def sink_document(self, clean_topics: list[str]) -> dict:
        # Batches of 2 s (the default 10 s would stretch each recovery timed through HDFS).
        return {
            "connector.class": "hdfs",
            "topics": clean_topics,
            "url": self.cluster.webhdfs_url,
            "root": ROOT,
            "commit_seconds": 2,
        }


class HdfsFiles:
    """The sink's committed files of one table, each read once (a committed file never changes, the log
    only grows)."""

    def __init__(self, url: str, table: str):
        from hdfs import InsecureClient

        self.client = InsecureClient(url, user="huiliu", timeout=30)
        self.root = f"{ROOT}/{table}"
        self._read: set[str] = set()
        self._rows: list[pl.DataFrame] = []

    def rows(self) -> pl.DataFrame:
        if self.client.status(self.root, strict=False) is not None:
            for directory, _, names in self.client.walk(self.root):
                for name in names:
                    path = f"{directory}/{name}"
                    if path not in self._read:
                        with self.client.read(path) as reader:
                            self._rows.append(pl.read_avro(io.BytesIO(reader.read()), columns=COLUMNS))
                        self._read.add(path)
        empty = pl.DataFrame(schema={c: pl.Int64 if c in ("id", "_sequence", "_offset") else pl.Utf8 for c in COLUMNS})
        return pl.concat(self._rows, how="vertical_relaxed") if self._rows else empty

    def holds(self, id_: int) -> bool:
        return bool(self.rows().get_column("id").cast(pl.Int64).eq(id_).any())

    @property
    def files(self) -> int:
        return len(self._read)


def latest(rows: pl.DataFrame) -> dict[int, tuple[str, str]]:
    """id -> (name, phone) of each id's row with the highest sequence, unless that row is a delete."""
    last = rows.sort("_sequence").group_by("id", maintain_order=True).last().filter(pl.col("_op") != "d")
    return {int(i): (n, p) for i, n, p in last.select("id", "name", "phone").iter_rows()}


@dataclass
class HdfsVerdict:
    """The HDFS lines of a chaos report."""

    skipped: str | None = None  # why the run had no HDFS
    started_after: float | None = None  # seconds the cluster took to start (beside the stack's start)
    files: int = 0
    rows: int = 0
    clean_events: int = 0  # distinct (id, sequence) in the clean topic
    clean_copies: int = 0  # messages of the clean topic beyond those: what the replays produced again
    duplicated: list = field(default_factory=list)  # (id, sequence) held more than once
    duplicates: int = 0
    missing: list = field(default_factory=list)  # (id, sequence) of the clean stream not held
    missing_count: int = 0
    extra: list = field(default_factory=list)  # held, not in the clean stream
    differ: list = field(default_factory=list)  # ids whose latest row is not the last valid version
    caught_up_after: float | None = None  # seconds into the HDFS check (after ClickHouse's)

    @property
    def ok(self) -> bool:
        return self.skipped is not None or not (self.duplicates or self.missing_count or self.extra or self.differ)

    def text(self) -> str:
        if self.skipped:
            return f"HDFS: skipped: {self.skipped}"
        up = f"cluster up in {self.started_after} s; " if self.started_after is not None else ""
        return (
            f"HDFS: {up}{self.files} files, {self.rows} rows for "
            f"{self.clean_events} events of the clean topic (which carried {self.clean_copies} copies "
            f"more); duplicates {self.duplicates}, missing {self.missing_count}, extra {len(self.extra)}, "
            f"latest version differs for {len(self.differ)} ids; caught up {self.caught_up_after} s into its check"
            + (f"\n  duplicated {self.duplicated}" if self.duplicated else "")
            + (f"\n  missing {self.missing}" if self.missing else "")
            + (f"\n  extra {self.extra}" if self.extra else "")
            + (f"\n  differ {self.differ}" if self.differ else "")
        )


def verdict(files: HdfsFiles, clean: dict[tuple[int, int], int], expected: dict, timeout: float) -> HdfsVerdict:
    """Waits until the latest rows equal `expected` (or the timeout), then counts. `clean`: how many
    times the clean topic carries each (id, sequence)."""
    v, started = HdfsVerdict(), time.monotonic()
    while True:
        rows = files.rows()
        if latest(rows) == expected:
            v.caught_up_after = round(time.monotonic() - started, 1)
            break
        if time.monotonic() - started > timeout:
            break
        time.sleep(2)
    counts = rows.group_by("id", "_sequence").len()
    held = {(int(i), int(s)): n for i, s, n in counts.iter_rows()}
    v.files, v.rows = files.files, rows.height
    v.clean_events, v.clean_copies = len(clean), sum(clean.values()) - len(clean)
    twice = sorted(k for k, n in held.items() if n > 1)
    v.duplicates, v.duplicated = sum(held[k] - 1 for k in twice), twice[:50]
    missing = sorted(set(clean) - set(held))
    v.missing_count, v.missing = len(missing), missing[:50]
    v.extra = sorted(set(held) - set(clean))[:50]
    got = latest(rows)
    v.differ = sorted(i for i in set(got) | set(expected) if got.get(i) != expected.get(i))[:50]
    return v
