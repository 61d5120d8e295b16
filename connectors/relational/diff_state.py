"""On-disk row state of full-table comparison: one SQLite file per table, never the table in memory.

Layout under the table's directory:
- `current.sqlite`  the state of the last round whose events the runtime committed;
- `building.sqlite` the state a running round writes while it compares (rebuilt after a crash);
- `r<N>.pending`    round N's complete state, waiting for the runtime to commit round N's events.

Each file holds `rows(k TEXT PRIMARY KEY, h BLOB, img TEXT)`: the canonical key, a blake2b hash of
the row's canonical text and that text itself (decoded back into the before image of an update or
a delete). A round looks up its rows in the old state chunk by chunk by key (an index probe per
row, batched), writes them into the new file, and finds deletes with one anti-join between the two
files. Lookups by key rather than a merge on sort order: the database's ORDER BY collation (e.g.
a locale for text keys) need not agree with any order Python or SQLite would use, and an
index probe does not care. Memory is one chunk plus SQLite's page cache.
"""

from __future__ import annotations

import json
import os
import sqlite3
from collections.abc import Iterator
from pathlib import Path

SCHEMA = "CREATE TABLE IF NOT EXISTS rows (k TEXT PRIMARY KEY, h BLOB NOT NULL, img TEXT NOT NULL) WITHOUT ROWID"
_LOOKUP_BATCH = 500  # bound parameters per IN (...) probe


def table_dir(root: Path, partition: str) -> Path:
    # Chinese table names: pinyin + hash, so two tables never share a state (schemas.naming.ascii_name)
    from schemas.naming import ascii_name

    return root / ascii_name(partition, r"[^A-Za-z0-9_.-]")


class DiffState:
    def __init__(self, directory: Path):
        self.dir = directory
        self.dir.mkdir(parents=True, exist_ok=True)
        self.current = self.dir / "current.sqlite"
        self.building = self.dir / "building.sqlite"

    def pending(self, round_no: int) -> Path:
        return self.dir / f"r{round_no}.pending"

    def recover(self, committed_round: int) -> None:
        """After a restart: keep a finished round the runtime committed, drop any other leftovers."""
        mine = self.pending(committed_round)
        if mine.exists():  # stored offset says committed, but the swap did not happen before the stop
            os.replace(mine, self.current)
        for leftover in [*self.dir.glob("r*.pending"), self.building]:
            leftover.unlink(missing_ok=True)

    def promote(self, round_no: int) -> None:
        os.replace(self.pending(round_no), self.current)

    def begin(self) -> RoundState:
        self.building.unlink(missing_ok=True)
        return RoundState(self)


class RoundState:
    """The new state being written by one round, with the previous state attached as `old`."""

    def __init__(self, state: DiffState):
        self.state = state
        self.db = sqlite3.connect(state.building, isolation_level=None)
        # the file is rebuilt from scratch after any crash, so no journal is needed while it is written
        self.db.execute("PRAGMA journal_mode=OFF")
        self.db.execute("PRAGMA synchronous=OFF")
        self.db.execute(SCHEMA)
        old = state.current if state.current.exists() else ":memory:"
        self.db.execute("ATTACH DATABASE ? AS old", (str(old),))
        self.db.execute(SCHEMA.replace("rows", "old.rows", 1))
        self.db.execute("BEGIN")

    def lookup(self, keys: list[str]) -> dict[str, tuple[bytes, str]]:
        found: dict[str, tuple[bytes, str]] = {}
        for i in range(0, len(keys), _LOOKUP_BATCH):
            part = keys[i : i + _LOOKUP_BATCH]
            marks = ",".join("?" * len(part))
            for k, h, img in self.db.execute(f"SELECT k, h, img FROM old.rows WHERE k IN ({marks})", part):
                found[k] = (h, img)
        return found

    def old_columns(self) -> list[str] | None:
        """The column names the previous state's row images were written with (None: not recorded)."""
        if not self.db.execute("SELECT 1 FROM old.sqlite_master WHERE name = 'layout'").fetchone():
            return None
        row = self.db.execute("SELECT names FROM old.layout").fetchone()
        return json.loads(row[0]) if row else None

    def set_columns(self, names: list[str]) -> None:
        """Record the images' column names in the new state itself (replaced with it, atomically)."""
        self.db.execute("CREATE TABLE IF NOT EXISTS main.layout (names TEXT NOT NULL)")
        self.db.execute("DELETE FROM main.layout")
        self.db.execute("INSERT INTO main.layout VALUES (?)", (json.dumps(names),))

    def add(self, rows: list[tuple[str, bytes, str]]) -> None:
        # OR REPLACE: a key read twice (a duplicate in a non-unique custom key) keeps its last image
        self.db.executemany("INSERT OR REPLACE INTO main.rows VALUES (?, ?, ?)", rows)

    def deleted(self, chunk: int) -> Iterator[list[tuple[str, str]]]:
        """Keys of the old state missing from the new one, with their last image, in chunks."""
        cur = self.db.execute(
            "SELECT o.k, o.img FROM old.rows o WHERE NOT EXISTS (SELECT 1 FROM main.rows n WHERE n.k = o.k)"
        )
        while rows := cur.fetchmany(chunk):
            yield rows

    def finish(self, round_no: int) -> None:
        """Make the new state durable as round `round_no`'s pending state."""
        self.db.execute("COMMIT")
        self.db.execute("DETACH DATABASE old")
        self.db.close()
        with open(self.state.building, "rb+") as f:
            os.fsync(f.fileno())
        os.replace(self.state.building, self.state.pending(round_no))

    def abort(self) -> None:
        try:
            self.db.close()
        finally:
            self.state.building.unlink(missing_ok=True)
