"""Tables of a multi-table capture held at an incompatible schema change while the others flow
(issue 15).

Trigger and diff modes read several tables in one task. An incompatible change of one table
(`connectors.schema_changes.Evolution` raises `SchemaChangeHeld`) holds only that table: the task
leaves it out and keeps capturing the others until an operator accepts the change, which restarts
the task (the accept signals the connector) and `Evolution.resume` follows it. Only when every
table of the task is held does the task stop, as a single-table capture does.

    held = HeldTables(evolution)
    held.resume(units)                  # at start: tables still held are left out
    unit = held.apply(unit, fresh)      # after a reflection: the unit to read, or the old one if held
    partition in held                   # is the table held?
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

from connectors.schema_changes import Evolution, SchemaChangeHeld

log = logging.getLogger(__name__)


class HeldTables:
    def __init__(self, evolution: Evolution):
        self.evolution = evolution
        self.errors: dict[str, SchemaChangeHeld] = {}  # partition -> why it is held
        # told each newly held table's error: the worker shows it in the task's status (RUNNING)
        self.on_hold: Callable[[str], None] | None = None

    def __contains__(self, partition: str) -> bool:
        return partition in self.errors

    def resume(self, units: list[Any]) -> None:
        """At task start: a change still held keeps its table out; accepted ones are followed."""
        for unit in units:
            try:
                self.evolution.resume(unit.captured)
            except SchemaChangeHeld as exc:
                self._hold(unit.captured.partition, exc)
        self.check(units)

    def apply(self, unit: Any, fresh: Any) -> Any:
        """`fresh` (the table reflected again) when its change is followed, `unit` when nothing
        that matters changed or when the change is held (the table is then left out)."""
        try:
            followed = self.evolution.apply(unit.captured, fresh.captured)
        except SchemaChangeHeld as exc:
            self._hold(unit.captured.partition, exc)
            return unit
        return fresh if followed is not unit.captured else unit

    def check(self, units: list[Any]) -> None:
        """Every table held: nothing can flow, so the task stops (FAILED, naming the change)."""
        if units and all(u.captured.partition in self.errors for u in units):
            raise self.errors[units[-1].captured.partition]

    def _hold(self, partition: str, exc: SchemaChangeHeld) -> None:
        new = partition not in self.errors
        self.errors[partition] = exc
        if new:
            log.warning("%s: %s; the connector's other tables go on", self.evolution.connector, exc)
            if self.on_hold is not None:
                held = "; ".join(str(e) for e in self.errors.values())
                self.on_hold(f"{len(self.errors)} table(s) held, the others go on: {held}"[:2000])
