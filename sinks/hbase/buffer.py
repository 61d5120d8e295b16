"""Collapse buffered changes to the final state per (row, family) before a flush.

Why not replay every event in order: HBase's Thrift `mutateRows` applies a row's puts before
its deletes, and a delete marker hides puts carrying the same (server) timestamp. A delete
followed by a re-insert of the same key in one flush would therefore lose the re-insert.
Keeping only the final state per (row, family) makes each flush order-independent and
idempotent when replayed after a failure.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from .mapping import RowChange


@dataclass(slots=True)
class FamilyState:
    delete: bool = False
    cells: dict[bytes, bytes] = field(default_factory=dict)
    # Qualifiers named by any event of this flush; those missing from the final put are
    # deleted one by one (columns set to NULL, or left over from a delete + re-insert).
    seen: set[bytes] = field(default_factory=set)

    @property
    def stale(self) -> set[bytes]:
        return self.seen - self.cells.keys()


class ChangeBuffer:
    def __init__(self) -> None:
        self._states: dict[tuple[bytes, str], FamilyState] = {}
        self.records = 0

    def __len__(self) -> int:
        return len(self._states)

    def add(self, change: RowChange) -> None:
        state = self._states.setdefault((change.row, change.family), FamilyState())
        state.seen |= change.columns
        state.delete = change.delete
        state.cells = dict(change.cells)  # the after image is a full row: last one wins
        self.records += 1

    def families(self) -> set[str]:
        return {family for _, family in self._states}

    def items(self):
        return self._states.items()

    def clear(self) -> None:
        self._states.clear()
        self.records = 0
