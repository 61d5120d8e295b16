"""Full-table comparison (AGG-02, mode 4): hash diff of successive snapshots, emits c/u/d.

For tables with no timestamp column, no triggers allowed and no log access. Any SQLAlchemy
database whose tables have a primary key (tested: PostgreSQL, MariaDB, SQLite); a table without
one is refused by name.

A round streams each table ordered by key through a server-side cursor (one statement, so one
consistent view of the table) in chunks of `fetch_size`, hashes each row's canonical text
(blake2b), probes the previous round's state on disk by key and writes the new state next to it
(diff_state explains the files). Unknown key -> `c`, changed hash -> `u` (before image from the
state), keys of the old state absent from the new -> `d`. Memory is bounded by one chunk.

Rounds and commits: a table's round ends with a batch carrying its offset `{"round": N}`; the new
state replaces the old only in `committed()`, after the runtime stored that offset. A crash
before that leaves the old state in place, so the next round compares against it again and
re-emits the changes (at least once). `source.sequence` = round * 10^12 + row ordinal, so a row's
versions grow across rounds; `source.position` = {"round", "ordinal", "key"}.

Schema change (issue 15, connectors.schema_changes): the tables are reflected again before each
round; a change is followed (every row is an update once, as its image changed) or holds that
table before the round reads it (connectors.held_tables: the other tables' rounds go on; its
state is kept, so its first round after the accept finds every change made meanwhile). The state records the column names its images were
written with, so before images and deletes after a change are decoded by name, not by position.
"""

from __future__ import annotations

import hashlib
import json
import logging
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from pydantic import Field
from sqlalchemy import create_engine

from connectors.base import ChangeEvent, RelationalSourceSettings, SourceBatch, SourceTask
from connectors.held_tables import HeldTables
from connectors.plugins import source_plugin
from connectors.relational.diff_state import DiffState, table_dir
from connectors.relational.rowcodec import canonical, from_json, jsonable
from connectors.relational.selection import SourceUnit, TableSelection, select_tables
from connectors.schema_changes import Evolution

log = logging.getLogger(__name__)

ROUND_STRIDE = 10**12  # ordinals per round in `sequence`: tables up to a trillion rows


class DiffSourceConfig(RelationalSourceSettings):
    url: str = Field(description="SQLAlchemy URL of the source database (any dialect; tables need a primary key)")
    system: str = Field(description="source system name, second part of the topic name")
    tables: TableSelection = Field(default_factory=TableSelection, description="tables to compare")
    state_dir: str | None = Field(
        None,
        description=(
            "directory for the per-table row state (about the tables' size on disk); "
            "default under a worker: <settings.state_dir>/diff"
        ),
    )
    fetch_size: int = Field(5000, gt=0, description="rows per chunk: fetched, compared and published together")
    interval_seconds: float = Field(0.0, ge=0, description="minimum time between the starts of two rounds")


def _hash(img: str) -> bytes:
    return hashlib.blake2b(img.encode(), digest_size=16).digest()


class DiffSourceTask(SourceTask):
    def __init__(self, config: DiffSourceConfig):
        self.config = config
        self.name = config.name
        self.engine = create_engine(config.url, future=True, pool_pre_ping=True)
        self.units = select_tables(self.engine, config.tables, config.system, config.unknown_types, need_key="diff")
        if not self.units:
            raise ValueError("tables: the selection matches no table")
        if not config.state_dir:
            raise ValueError("state_dir: diff mode needs a directory for its row state")
        root = Path(config.state_dir) / config.name
        self.states = {u.captured.partition: DiffState(table_dir(root, u.captured.partition)) for u in self.units}
        self.rounds: dict[str, int] = {}
        self.awaiting: dict[str, int] = {}  # partition -> round whose state waits for the commit
        self._pass: Iterator[SourceBatch] | None = None
        self._next_round = 0.0
        self.evolution = Evolution(config.name, config.url)
        self.held = HeldTables(self.evolution)

    def start(self, offsets: dict[str, dict[str, Any]]) -> None:
        self.held.resume(self.units)  # a table whose change is still held stays out
        for partition, state in self.states.items():
            self.rounds[partition] = int((offsets.get(partition) or {}).get("round", 0))
            state.recover(self.rounds[partition])

    def poll(self) -> SourceBatch:
        if self._pass is None:
            if time.monotonic() < self._next_round:
                return SourceBatch()
            self._next_round = time.monotonic() + self.config.interval_seconds
            self._check_schema()
            self._pass = (
                batch
                for unit in self.units
                if unit.captured.partition not in self.held
                for batch in self._diff_table(unit)
            )
        for batch in self._pass:
            return batch
        self._pass = None  # the round is over: an empty batch ends the runtime's drain()
        return SourceBatch()

    def _check_schema(self) -> None:
        """Reflect the tables before a round; follow a change, or hold that table (its state stays
        as it is, so its next round after the accept finds every change since)."""
        c = self.config
        fresh = {
            u.captured.partition: u
            for u in select_tables(self.engine, c.tables, c.system, c.unknown_types, need_key="diff")
        }
        units = []
        for unit in self.units:
            new = fresh.get(unit.captured.partition)
            if new is not None and unit.captured.partition not in self.held:
                unit = self.held.apply(unit, new)
            units.append(unit)
        self.units = units
        self.held.check(units)

    def _diff_table(self, unit: SourceUnit) -> Iterator[SourceBatch]:
        partition = unit.captured.partition
        round_no = self.rounds[partition] + 1
        base = round_no * ROUND_STRIDE
        ts_ms = int(time.time() * 1000)
        names, types = unit.names, [c.type for c in unit.columns]
        key_idx = [names.index(k) for k in unit.key_names]
        state = self.states[partition].begin()
        old_names = state.old_columns() or names  # the previous images' layout (before a schema change)
        state.set_columns(names)
        ordinal = changes = 0
        # the last events of a round travel with its offset (a batch of offsets alone would end drain())
        held: list[ChangeEvent] = []
        try:
            with self.engine.connect() as conn:
                result = conn.execution_options(stream_results=True, yield_per=self.config.fetch_size).execute(
                    unit.select()
                )
                for chunk in result.partitions(self.config.fetch_size):
                    imgs = [canonical(row) for row in chunk]
                    keys = [canonical([row[i] for i in key_idx]) for row in chunk]
                    hashes = [_hash(img) for img in imgs]
                    old = state.lookup(keys)
                    events = []
                    for row, k, h in zip(chunk, keys, hashes):
                        ordinal += 1
                        prev = old.get(k)
                        if prev is not None and prev[0] == h:
                            continue
                        after = dict(zip(names, row))
                        before = self._image(names, types, prev[1], old_names) if prev else None
                        events.append(
                            self._event(
                                unit,
                                "u" if prev else "c",
                                before,
                                after,
                                ts_ms,
                                round_no,
                                base + ordinal,
                                [jsonable(row[i]) for i in key_idx],
                            )
                        )
                    state.add(list(zip(keys, hashes, imgs)))
                    if events:
                        changes += len(events)
                        if held:
                            yield SourceBatch(held)
                        held = events
            for gone in state.deleted(self.config.fetch_size):
                events = []
                for _k, img in gone:
                    ordinal += 1
                    before = self._image(names, types, img, old_names)
                    events.append(
                        self._event(
                            unit,
                            "d",
                            before,
                            None,
                            ts_ms,
                            round_no,
                            base + ordinal,
                            [jsonable(before[n]) for n in unit.key_names],
                        )
                    )
                changes += len(events)
                if held:
                    yield SourceBatch(held)
                held = events
            state.finish(round_no)
        except BaseException:
            state.abort()  # also on GeneratorExit: close() in the middle of a round
            raise
        if not changes:  # nothing to make durable: the new state (equal to the old) is kept now
            self.states[partition].promote(round_no)
            return
        self.awaiting[partition] = round_no
        log.info("diff round %d of %s: %d rows, %d changes", round_no, partition, ordinal, changes)
        yield SourceBatch(held, {partition: {"round": round_no, "rows": ordinal, "changes": changes}})

    @staticmethod
    def _image(names: list[str], types: list[Any], img: str, old_names: list[str]) -> dict[str, Any]:
        """A stored image as a row of the current columns: by name (a column added since is None)."""
        values = json.loads(img)
        if old_names == names:
            return {n: from_json(t, v) for n, t, v in zip(names, types, values)}
        old = dict(zip(old_names, values))
        return {n: from_json(t, old.get(n)) for n, t in zip(names, types)}

    @staticmethod
    def _event(unit, op, before, after, ts_ms, round_no, sequence, key) -> ChangeEvent:
        position = {"round": round_no, "ordinal": sequence % ROUND_STRIDE, "key": key}
        return ChangeEvent(unit.captured, op, before, after, ts_ms, position, sequence)

    def committed(self, offsets: dict[str, dict[str, Any]]) -> None:
        """The round's events are durable: its state becomes the base of the next comparison."""
        for partition, offset in offsets.items():
            round_no = self.awaiting.get(partition)
            if round_no is not None and offset.get("round") == round_no:
                self.states[partition].promote(round_no)
                self.rounds[partition] = round_no
                del self.awaiting[partition]

    def close(self) -> None:
        if self._pass is not None:
            self._pass.close()
            self._pass = None
        self.engine.dispose()


@source_plugin(
    "relational.diff",
    config_model=DiffSourceConfig,
    description="full-table comparison: hash diff of successive snapshots (AGG-02)",
)
def _plugin_factory(config: DiffSourceConfig, ctx) -> DiffSourceTask:
    if not config.state_dir:  # a worker keeps the state next to its other state
        config = config.model_copy(update={"state_dir": str(Path(ctx.settings.state_dir) / "diff")})
    return DiffSourceTask(config)
