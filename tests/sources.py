"""A SourceTask that replays a given list of change events: lets sink tests publish through the
real SourceRuntime (schemas registered, Avro envelopes, acked produce) without a database."""
from __future__ import annotations

from connectors.base import CapturedTable, ChangeEvent, SourceBatch, SourceTask


class ListSourceTask(SourceTask):
    def __init__(self, name: str, events: list[ChangeEvent], batch_size: int = 5000):
        self.name = name
        self.events = events
        self.batch_size = batch_size
        self.pos = 0

    def start(self, offsets):
        self.pos = int((offsets.get("list") or {}).get("pos", 0))

    def poll(self) -> SourceBatch:
        chunk = self.events[self.pos:self.pos + self.batch_size]
        if not chunk:
            return SourceBatch()
        self.pos += len(chunk)
        return SourceBatch(chunk, {"list": {"pos": self.pos}})


def upsert(table: CapturedTable, row: dict, seq: int, op: str = "c") -> ChangeEvent:
    return ChangeEvent(table, op, None, row, 1_700_000_000_000 + seq, {"seq": seq}, seq)


def delete(table: CapturedTable, row: dict, seq: int) -> ChangeEvent:
    return ChangeEvent(table, "d", row, None, 1_700_000_000_000 + seq, {"seq": seq}, seq)
