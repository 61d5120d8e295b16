"""The source contract (Kafka Connect's split): a task captures, the runtime publishes and stores offsets.

`SourceTask.poll()` returns change events plus the offsets that are true once those events are
durable; the runtime produces them, waits for the broker's acknowledgement, stores the offsets,
and only then calls `committed()` (where a task may purge a change-log table or confirm a
replication slot position).
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from schemas.sqltypes import ColumnSpec

if TYPE_CHECKING:
    import pyarrow as pa


class SourceSettings(BaseModel):
    """What every source's config holds: its name and where its topics go. Plugins extend it."""

    model_config = ConfigDict(extra="forbid")

    name: str = Field(description="connector name; offsets are stored under it")
    topic_prefix: str = Field("huiliu", description="first part of the topic name")
    partitions: int = Field(1, gt=0, description="partitions of topics created for the tables")


class RelationalSourceSettings(SourceSettings):
    unknown_types: Literal["error", "string"] = Field(
        "error", description="a column type with no Avro mapping: error, or pass the value as a string"
    )


@dataclass(frozen=True)
class CapturedTable:
    system: str
    table: str
    columns: tuple[ColumnSpec, ...]
    database: str | None = None
    schema: str | None = None
    unknown_types: str = "error"

    def __post_init__(self):
        # The runtime looks tables up per event; hashing SQLAlchemy column types each time is
        # costly, so the hash of the (immutable) layout is computed once.
        layout = tuple((c.name, repr(c.sql_type), c.nullable, c.primary_key) for c in self.columns)
        object.__setattr__(
            self, "_hash", hash((self.system, self.database, self.schema, self.table, self.unknown_types, layout))
        )
        object.__setattr__(self, "_keys", [c.name for c in self.columns if c.primary_key])

    def __hash__(self) -> int:
        return self._hash

    @property
    def key_columns(self) -> list[str]:
        return list(self._keys)

    def key_of(self, row: dict[str, Any] | None) -> dict[str, Any] | None:
        keys = self._keys
        return {k: row[k] for k in keys} if keys and row is not None else None

    @property
    def partition(self) -> str:
        """The offset partition of this table: one stored offset per captured table."""
        return f"{self.schema or ''}.{self.table}"


@dataclass
class ChangeEvent:
    table: CapturedTable
    op: str  # c, u, d, r
    before: dict[str, Any] | None
    after: dict[str, Any] | None
    ts_ms: int
    position: dict[str, Any] | str  # or its JSON text, where the source builds that more cheaply
    sequence: int
    snapshot: bool = False
    transaction: dict[str, Any] | None = None


@dataclass
class RejectedEvent(ChangeEvent):
    """A row the source could not parse or type: the runtime quarantines it with `reason`."""

    reason: str = ""


@dataclass
class RowFrame:
    """Many events of one table with the same op, in columns: sources that parse into columns
    (file imports) hand the runtime this instead of one ChangeEvent per row, and it is encoded
    column by column. `rows` holds the after images (one column per table column)."""

    table: CapturedTable
    op: str
    rows: pa.Table
    positions: pa.Array  # string: each row's position as JSON text
    sequences: pa.Array  # int64 (or a dictionary of int64)
    ts_ms: int
    snapshot: bool = False

    def __len__(self) -> int:
        return self.rows.num_rows

    def events(self) -> list[ChangeEvent]:
        """The same rows one by one (the runtime's fallback when a row does not fit the schema)."""
        return [
            ChangeEvent(self.table, self.op, None, row, self.ts_ms, position, sequence, self.snapshot)
            for row, position, sequence in zip(
                self.rows.to_pylist(), self.positions.to_pylist(), self.sequences.to_pylist()
            )
        ]


@dataclass
class ChangeFrame:
    """Change events of one table in columns, in source order, as a log reader decodes them
    (connectors.relational.cdc_pg_columns): each row's op, before and after image, commit time,
    position, sequence and transaction. Encoded column by column like a RowFrame."""

    table: CapturedTable
    ops: pa.Array  # string c/u/d (or a dictionary of them)
    before: pa.StructArray  # row images, one field per table column by source name; null where none
    after: pa.StructArray
    ts_ms: pa.Array  # int64 (or a dictionary of int64)
    positions: pa.Array  # string: each row's position as JSON text
    sequences: pa.Array  # int64
    transactions: pa.StructArray  # {id, total_order, data_collection_order}
    fallback: Callable[[], list[ChangeEvent]]  # the same events one by one, built as a row-wise reader does
    snapshot: bool = False

    def __len__(self) -> int:
        return len(self.ops)

    def events(self) -> list[ChangeEvent]:
        return self.fallback()


@dataclass
class SourceBatch:
    events: list[ChangeEvent] = field(default_factory=list)
    offsets: dict[str, dict[str, Any]] = field(default_factory=dict)  # partition -> offset after these events
    frames: list[RowFrame | ChangeFrame] = field(default_factory=list)  # more events, in columns

    @property
    def size(self) -> int:
        return len(self.events) + sum(len(f) for f in self.frames)

    def all_events(self) -> list[ChangeEvent]:
        """Events, then the frames' rows one by one (for readers that do not take frames)."""
        return self.events + [ev for frame in self.frames for ev in frame.events()]


class SourceTask(ABC):
    name: str
    # True: the runtime may publish the next batch before this one's offsets are stored (stored
    # in order once acknowledged, connectors.acks); `committed` is then called from another thread.
    pipelined: bool = False

    @abstractmethod
    def start(self, offsets: dict[str, dict[str, Any]]) -> None:
        """Resume from the stored offsets (partition -> offset); empty means a first start."""

    @abstractmethod
    def poll(self) -> SourceBatch:
        """Capture the next changes; an empty batch means nothing new right now."""

    def take_counters(self) -> dict[str, int]:
        """Counts since the last call that belong in the stage counters (e.g. dropped frames)."""
        return {}

    def committed(self, offsets: dict[str, dict[str, Any]]) -> None:
        """Called after `offsets` were stored: the events before them are durable in Kafka."""

    def close(self) -> None:
        """Release connections."""
