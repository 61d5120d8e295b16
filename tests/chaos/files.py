"""The file import load of a chaos run: CSV files of new rows dropped into a watched directory, read by
the platform's file source (connectors/files) in a second pipeline (`chaos-files`: the same trim and
two rules, a ClickHouse table of its own, and the HDFS sink's second topic), and what the stores must
hold at the end: every valid row once, every rejected row quarantined.

Each file holds new ids only, so the model is simple: a row is valid or rejected for good. A file is
written under a temporary name the source ignores and then renamed, so it is never seen half written.
"""

from __future__ import annotations

import csv
import random
import threading
from dataclasses import dataclass, field
from pathlib import Path

from tests.chaos.hdfs import HdfsVerdict
from tests.chaos.load import person, valid

PIPELINE = "chaos-files"  # its connectors' names start with "chaos-": the run checks their tasks too
TABLE = "chaos_imports"
INBOX = "chaos_inbox"  # under the data root (the operator's callers resolve paths inside it)


def document(inbox: Path, transforms: list[dict], rules: list[dict]) -> dict:
    """The pipeline; `inbox` absolute (a local store's root is opened as given, by the worker)."""
    return {
        "name": PIPELINE,
        "source": {
            "kind": "files",
            "config": {
                "system": "chaos",
                "table": TABLE,
                "store": {"kind": "local", "root": str(inbox), "pattern": "*.csv"},
                "columns": [
                    {"name": "id", "type": "bigint", "key": True, "nullable": False},
                    {"name": "name"},
                    {"name": "phone"},
                ],
                "settle_seconds": 0,  # files appear whole (renamed into place)
            },
        },
        "transforms": transforms,
        "rules": rules,
        "sink": {"kind": "clickhouse", "config": {"table": TABLE}},
    }


class FileLoad:
    """Drops a CSV file of ~`rate` * `every` new rows every `every` seconds, from one seeded thread."""

    def __init__(self, inbox: Path, rate: int, seed: int, every: float = 2.0):
        self.inbox, self.every = inbox, every
        self.per_file = max(1, int(rate * every))
        self.rng = random.Random(seed)
        self.files = 0
        self.valid: dict[int, tuple[str, str]] = {}  # what ClickHouse must hold
        self.rejected: set[int] = set()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="chaos-files", daemon=True)

    def start(self) -> None:
        self.inbox.mkdir(parents=True, exist_ok=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(30)

    @property
    def rows(self) -> int:
        return len(self.valid) + len(self.rejected)

    def _drop(self) -> None:
        first = self.rows + 1
        rows = [person(self.rng, id_) for id_ in range(first, first + self.per_file)]
        self.files += 1
        final = self.inbox / f"people_{self.files:05d}.csv"
        temp = final.with_suffix(".csv.tmp")
        with temp.open("w", newline="", encoding="utf-8") as f:
            writer = csv.writer(f)
            writer.writerow(["id", "name", "phone"])
            writer.writerows(rows)
        temp.rename(final)
        for id_, name, phone in rows:
            if valid(name, phone):
                self.valid[id_] = (name.strip(), phone.strip())
            else:
                self.rejected.add(id_)

    def _run(self) -> None:
        while not self._stop.wait(self.every):
            self._drop()


@dataclass
class ImportsVerdict:
    """The file import's lines of a chaos report."""

    files: int = 0
    rows: int = 0
    valid: int = 0
    rejected: int = 0
    clickhouse_rows: int = 0
    caught_up_after: float | None = None
    missing: list = field(default_factory=list)
    extra: list = field(default_factory=list)
    differ: list = field(default_factory=list)
    duplicated_keys: int = 0
    rejected_without_quarantine: list = field(default_factory=list)
    quarantine_without_reason: int = 0
    hdfs: HdfsVerdict = field(default_factory=HdfsVerdict)

    @property
    def ok(self) -> bool:
        return (
            self.rows > 0
            and not (self.missing or self.extra or self.differ or self.duplicated_keys)
            and not (self.rejected_without_quarantine or self.quarantine_without_reason)
            and self.hdfs.ok
        )

    def text(self) -> str:
        lines = [
            f"file import: {self.files} CSV files, {self.rows} rows ({self.valid} valid, {self.rejected} rejected); "
            f"ClickHouse FINAL {self.clickhouse_rows} rows, caught up {self.caught_up_after} s into its check; "
            f"missing {len(self.missing)}, extra {len(self.extra)}, differ {len(self.differ)}, keys twice "
            f"{self.duplicated_keys}; rejected without quarantine record {len(self.rejected_without_quarantine)}"
        ]
        for name in ("missing", "extra", "differ", "rejected_without_quarantine"):
            if getattr(self, name):
                lines.append(f"  {name} {getattr(self, name)}")
        lines.append("  " + self.hdfs.text())
        return "\n".join(lines)
