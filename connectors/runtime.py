"""Runs a SourceTask: publish its events as Avro envelopes, store offsets after the broker acked them.

A row that cannot be encoded (a poison row), or that the source itself could not parse or type
(a RejectedEvent), goes to the table's quarantine topic with the reason and capture continues;
the offsets stored afterwards cover it. An error of the broker or the task stops the loop and
the caller restarts the task from the stored offsets, so nothing is skipped.
"""

from __future__ import annotations

import json
import logging
import time
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from connectors.acks import AcksBehind
from connectors.base import CapturedTable, ChangeEvent, ChangeFrame, RejectedEvent, RowFrame, SourceBatch, SourceTask
from deploy.control import OffsetStore
from deploy.kafka import AckedProducer, ensure_topics
from schemas.batch_avro import BatchEncodeError, UnsupportedSchema
from schemas.envelope import QUARANTINE_SCHEMA, envelope_schema, key_schema, make_event, row_fields
from schemas.naming import NameCollision, avro_name, key_subject, quarantine_topic, topic_name, value_subject
from schemas.serde import WireCodec

log = logging.getLogger(__name__)


def _json_default(value: Any) -> str:
    return value.isoformat() if hasattr(value, "isoformat") else str(value)


# Built once: json.dumps(..., default=...) constructs a new encoder on every call (a position per event).
_position_json = json.JSONEncoder(default=_json_default).encode


class SourceRuntime:
    def __init__(
        self,
        task: SourceTask,
        *,
        bootstrap: str,
        codec: WireCodec,
        control_db_url: str,
        topic_prefix: str = "huiliu",
        partitions: int = 1,
        counters=None,
        producer: AckedProducer | None = None,
    ):
        self.task = task
        self.bootstrap = bootstrap
        self.codec = codec
        self.offsets = OffsetStore(control_db_url, task.name)
        self.control_db_url = control_db_url
        self.topic_prefix = topic_prefix
        self.partitions = partitions
        self.counters = counters
        self.producer = producer or AckedProducer(bootstrap)
        self._tables: dict[CapturedTable, tuple[str, int, int | None, str]] = {}
        # source column name -> Avro field name, for tables with names Avro does not allow (schemas.naming)
        self._renames: dict[CapturedTable, dict[str, str]] = {}
        self._topic_sources: dict[str, tuple] = {}  # topic -> (system, schema, table): two on one is refused
        self._quarantine_topics: set[str] = set()
        self._quarantine_id: int | None = None
        # `schema.table` (or `database.table`) -> topic, for tables an accepted incompatible schema
        # change moved to a new topic (connectors.schema_changes)
        self.topic_overrides: dict[str, str] = {}
        self.started = False
        self._acks: AcksBehind | None = None  # while a pipelined task publishes

    def topic_of(self, table: CapturedTable) -> str:
        if self.topic_overrides:
            moved = self.topic_overrides.get(f"{table.schema or table.database}.{table.table}")
            if moved:
                return moved
        return topic_name(self.topic_prefix, table.system, table.schema, table.table)

    def prepare_table(self, table: CapturedTable) -> str:
        """Register a table layout's schemas (and create its topics) now; its topic. A task that
        follows a schema change calls this to learn at once whether the registry accepts it."""
        return self._prepare(table)[0]

    def _prepare(self, table: CapturedTable) -> tuple[str, int, int | None, str]:
        """Register the table's schemas and create its topics once per table layout."""
        if table not in self._tables:
            topic = self.topic_of(table)
            origin = (table.system, table.schema, table.table)
            other = self._topic_sources.setdefault(topic, origin)
            if other != origin:
                raise NameCollision(
                    f"tables {'.'.join(map(str, other))!r} and {'.'.join(map(str, origin))!r} "
                    f"would both be written to topic {topic!r}"
                )
            cols = list(table.columns)
            renames = {o: n for o, n in row_fields(cols, table.table).items() if o != n}  # NameCollision: refused
            if renames:
                self._renames[table] = renames
            ensure_topics(self.bootstrap, [topic, quarantine_topic(topic)], self.partitions)
            value_id = self.codec.register(
                value_subject(topic),
                envelope_schema(table.system, table.schema, table.table, cols, table.unknown_types),
            )
            kschema = key_schema(table.system, table.schema, table.table, cols, table.unknown_types)
            key_id = self.codec.register(key_subject(topic), kschema) if kschema else None
            row_name = ".".join(
                avro_name(p) for p in ("huiliu", table.system, table.schema or "default", table.table, "Value")
            )
            self._tables[table] = (topic, value_id, key_id, row_name)
            self._quarantine_topics.add(topic)
        return self._tables[table]

    def start(self) -> None:
        evolution = getattr(self.task, "evolution", None)  # capture tasks that follow schema changes
        if evolution is not None:
            evolution.bind_runtime(self)
        self.task.start(self.offsets.load_all())
        self.started = True

    def _envelope(self, ev: ChangeEvent, row_name: str | None = None) -> dict:
        t = ev.table
        position = ev.position if isinstance(ev.position, str) else _position_json(ev.position)
        source = {
            "system": t.system,
            "database": t.database,
            "schema": t.schema,
            "table": t.table,
            "connector": self.task.name,
            "position": position,
            "sequence": ev.sequence,
            "snapshot": ev.snapshot,
        }
        before, after = ev.before, ev.after
        renames = self._renames.get(t)
        if renames:  # rows carry source column names; the schema has Avro field names
            before = _renamed(before, renames)
            after = _renamed(after, renames)
        if row_name:  # fastavro tuple notation names the union branch, so it skips trying each branch
            before = (row_name, before) if before is not None else None
            after = (row_name, after) if after is not None else None
        return make_event(ev.op, before, after, ev.ts_ms, source, ev.transaction)

    def _quarantine(self, topic: str, ev: ChangeEvent, reason: str) -> None:
        if self._quarantine_id is None:
            self._quarantine_id = self.codec.register(value_subject(quarantine_topic(topic)), QUARANTINE_SCHEMA)
        record = {
            "reason": reason,
            "stage": f"connector:{self.task.name}",
            "violations": [],
            "original_topic": topic,
            "original_partition": None,
            "original_offset": None,
            "original_key": None,
            "original_value": getattr(ev, "raw", None),
            "original_json": json.dumps(self._quarantined_json(ev), default=_json_default, ensure_ascii=False),
            "ts_ms": int(time.time() * 1000),
        }
        self.producer.produce(quarantine_topic(topic), self.codec.encode(self._quarantine_id, record))

    def _quarantined_json(self, ev: ChangeEvent) -> dict:
        """The event's envelope; a refused file row adds `raw`: the record as it stood in the file
        (decoded text, encoding, bytes kept, truncated) and its reason's catalogue `code`/`params`;
        `original_value` holds the original bytes (both bounded by the source, 64 KiB)."""
        doc = self._envelope(ev)
        raw_text = getattr(ev, "raw_text", None)
        if raw_text is not None or getattr(ev, "raw", None) is not None:
            doc["raw"] = {
                "text": raw_text,
                "encoding": getattr(ev, "encoding", None),
                "bytes": len(ev.raw or b""),
                "truncated": bool(getattr(ev, "truncated", False)),
            }
        if getattr(ev, "code", None):
            doc["reason_code"], doc["reason_params"] = ev.code, ev.params
        return doc

    def _reject(self, ev: RejectedEvent) -> None:
        # Only the topic names are needed: a rejected row never registers a value schema.
        topic = self.topic_of(ev.table)
        if topic not in self._quarantine_topics:
            ensure_topics(self.bootstrap, [topic, quarantine_topic(topic)], self.partitions)
            self._quarantine_topics.add(topic)
        self._quarantine(topic, ev, ev.reason)

    def _encode_table(self, events: list[ChangeEvent]) -> list[tuple[bytes | None, bytes] | str]:
        """(key, value) for each event of one table, or why it cannot be encoded. One columnar
        pass for the batch; if any row does not fit, row by row so only that row is refused."""
        topic, value_id, key_id, row_name = self._prepare(events[0].table)
        key_rows = [ev.table.key_of(ev.after if ev.after is not None else ev.before) for ev in events]
        renames = self._renames.get(events[0].table)
        if renames:
            key_rows = [_renamed(row, renames) for row in key_rows]
        try:
            values = self.codec.encode_many(value_id, [self._envelope(ev) for ev in events])
            keys: list[bytes | None] = [None] * len(events)
            if key_id is not None:
                keyed = [i for i, row in enumerate(key_rows) if row]
                for i, key in zip(keyed, self.codec.encode_many(key_id, [key_rows[i] for i in keyed])):
                    keys[i] = key
            return list(zip(keys, values))
        except Exception:
            pass
        out: list[tuple[bytes | None, bytes] | str] = []
        for ev, key_row in zip(events, key_rows):
            try:
                value = self.codec.encode(value_id, self._envelope(ev, row_name))
                out.append((self.codec.encode(key_id, key_row) if key_id is not None and key_row else None, value))
            except Exception as exc:  # poison row: quarantined with the reason, capture goes on
                out.append(f"unencodable row in {ev.table.table}: {exc}")
        return out

    def publish(self, batch: SourceBatch) -> dict[str, int]:
        """Produce the batch's events, then its frames; store its offsets once all are acked. A
        pipelined task's offsets are stored on the acks thread while the next batch is read and
        encoded; that batch is produced only once they are stored, so the topic never holds more
        than one batch beyond the stored offsets (what a crash reads again)."""
        counts = {"read": 0, "quarantined": 0}
        encoded = [(frame, self._encode_frame(frame)) for frame in batch.frames]
        if self._acks is not None:
            self._acks.wait()
        self._publish_events(batch.events, counts)
        for frame, records in encoded:
            if records is None:  # some row does not fit the schema: row by row, so only it is quarantined
                self._publish_events(frame.events(), counts)
            else:
                self.producer.produce_many(*records)
                counts["read"] += len(records[1])
        if self._acks is None and getattr(self.task, "pipelined", False):
            self._acks = AcksBehind(self._store, name=f"acks-{self.task.name}")
        if self._acks is not None:
            self._acks.submit(batch.offsets)
        else:
            self._store(batch.offsets)
        take = getattr(self.task, "take_counters", None)  # tasks need not subclass SourceTask
        if take is not None:
            counts.update({k: v for k, v in take().items() if v})
        return counts

    def _store(self, offsets: dict[str, dict[str, Any]]) -> None:
        self.producer.flush_acked()
        for partition, offset in offsets.items():
            self.offsets.save(partition, offset)
        self.task.committed(offsets)

    def settle(self, quiet: bool = False) -> None:
        """Wait until the offsets of all that was published are stored (a pipelined task's are
        stored behind the producer). quiet: an error is logged, not raised (one is already)."""
        acks, self._acks = self._acks, None
        if acks is None:
            return
        try:
            acks.wait()
        except Exception:
            if not quiet:
                raise
            log.exception("offsets of batches published before the error were not stored")
        finally:
            acks.close()

    def _publish_events(self, events: list[ChangeEvent], counts: dict[str, int]) -> None:
        by_table: dict[CapturedTable, list[int]] = {}
        for i, ev in enumerate(events):
            if not isinstance(ev, RejectedEvent):
                by_table.setdefault(ev.table, []).append(i)
        encoded: dict[int, tuple[bytes | None, bytes] | str] = {}
        for positions in by_table.values():
            encoded.update(zip(positions, self._encode_table([events[i] for i in positions])))
        for i, ev in enumerate(events):  # in source order: per-key order is kept
            if isinstance(ev, RejectedEvent):
                self._reject(ev)
                counts["quarantined"] += 1
                continue
            topic = self._tables[ev.table][0]
            result = encoded[i]
            if isinstance(result, str):
                log.warning("row of %s cannot be encoded, quarantined: %s", ev.table.table, result)
                self._quarantine(topic, ev, result)
                counts["quarantined"] += 1
                continue
            self.producer.produce(topic, result[1], result[0])
            counts["read"] += 1

    def _encode_frame(self, frame: RowFrame | ChangeFrame) -> tuple[str, list[bytes], list[bytes] | None] | None:
        """(topic, values, keys) of a frame encoded in columns, or None if some row does not fit."""
        topic, value_id, key_id, _ = self._prepare(frame.table)
        renames = self._renames.get(frame.table)
        try:
            values = self.codec.encode_arrow(value_id, self._frame_envelopes(frame, self.codec.arrow_type(value_id)))
            keys = None
            if key_id is not None:
                key_type = self.codec.arrow_type(key_id)
                if isinstance(frame, ChangeFrame):
                    key_rows = _change_keys(frame, key_type, renames)
                else:
                    key_rows = _struct(_renamed_columns(frame.rows, renames), key_type)
                keys = self.codec.encode_arrow(key_id, key_rows)
        except (BatchEncodeError, UnsupportedSchema, pa.ArrowException, TypeError, ValueError):
            return None
        return topic, values, keys

    def _frame_envelopes(self, frame: RowFrame | ChangeFrame, envelope: pa.StructType | None) -> pa.StructArray:
        """The envelopes of a frame's rows as one Arrow struct array of the envelope schema's type."""
        if envelope is None:
            raise UnsupportedSchema("the envelope schema is not batch-encodable")
        n, t = len(frame), frame.table
        renames = self._renames.get(t)
        source = envelope.field("source").type
        constant = {
            "system": t.system,
            "database": t.database,
            "schema": t.schema,
            "table": t.table,
            "connector": self.task.name,
            "snapshot": frame.snapshot,
        }
        columns = {"position": frame.positions, "sequence": frame.sequences}
        same = pa.array(np.zeros(n, np.int32))  # constants as one-entry dictionaries: encoded once
        source_array = pa.StructArray.from_arrays(
            [
                _typed(columns[f.name], f.type) if f.name in columns else _constant(constant[f.name], f.type, same)
                for f in source
            ],
            names=[f.name for f in source],  # not `fields`: they would refuse the dictionaries
        )
        if isinstance(frame, ChangeFrame):
            parts = {
                "before": _image(frame.before, envelope.field("before").type, renames),
                "after": _image(frame.after, envelope.field("after").type, renames),
                "op": frame.ops,
                "ts_ms": frame.ts_ms,
                "transaction": frame.transactions,
            }
        else:
            parts = {
                "before": pa.nulls(n, envelope.field("before").type),
                "after": _struct(_renamed_columns(frame.rows, renames), envelope.field("after").type),
                "op": _constant(frame.op, pa.string(), same),
                "ts_ms": _constant(frame.ts_ms, pa.int64(), same),
                "transaction": pa.nulls(n, envelope.field("transaction").type),
            }
        parts["source"] = source_array
        return pa.StructArray.from_arrays([parts[f.name] for f in envelope], names=[f.name for f in envelope])

    def run_once(self) -> int:
        """One poll; returns the events published (an offsets-only batch is stored and returns 0)."""
        if not self.started:
            self.start()
        batch = self.task.poll()
        if not batch.size and not batch.offsets:
            return 0
        counts = self.publish(batch)
        if self.counters:
            self.counters.add("source", counts)
        return batch.size

    def drain(self) -> int:
        """Poll until a poll publishes nothing (a round-based task ends its round there); returns
        once the offsets of all it published are stored."""
        total = 0
        try:
            while n := self.run_once():
                total += n
        except BaseException:
            self.settle(quiet=True)
            raise
        self.settle()
        return total

    def run(self, stop, idle_seconds: float = 1.0) -> None:
        try:
            while not stop.is_set():
                if not self.run_once():
                    self.settle()
                    stop.wait(idle_seconds)
            self.settle()
        except BaseException:
            self.settle(quiet=True)
            raise
        finally:
            self.task.close()


def _renamed(row: dict[str, Any] | None, renames: dict[str, str]) -> dict[str, Any] | None:
    return None if row is None else {renames.get(k, k): v for k, v in row.items()}


def _renamed_columns(rows: pa.Table, renames: dict[str, str] | None) -> pa.Table:
    return rows.rename_columns([renames.get(c, c) for c in rows.column_names]) if renames else rows


def _typed(column: pa.Array, arrow_type: pa.DataType) -> pa.Array:
    """`column` cast to `arrow_type`; a dictionary of that type stays one (the encoder takes it)."""
    if pa.types.is_dictionary(column.type) and column.type.value_type.equals(arrow_type):
        return column
    return column.cast(arrow_type)


def _constant(value: Any, arrow_type: pa.DataType, same: pa.Array) -> pa.Array:
    """`value` on every row: a dictionary of one entry (None: a column of nulls)."""
    if value is None:
        return pa.nulls(len(same), arrow_type)
    return pa.DictionaryArray.from_arrays(same, pa.array([value], arrow_type))


def _struct(rows: pa.Table, arrow_type: pa.StructType) -> pa.StructArray:
    """The table's columns named by `arrow_type`, cast to its field types, as one struct array."""
    return pa.StructArray.from_arrays(
        [rows.column(f.name).combine_chunks().cast(f.type) for f in arrow_type], fields=list(arrow_type)
    )


def _image(image: pa.StructArray, arrow_type: pa.StructType, renames: dict[str, str] | None) -> pa.StructArray:
    """Row images named by source column (null rows: no image) as `arrow_type`, named by Avro field."""
    names = [renames.get(f.name, f.name) for f in image.type] if renames else [f.name for f in image.type]
    by_name = dict(zip(names, (image.field(i) for i in range(image.type.num_fields))))
    return pa.StructArray.from_arrays(
        [by_name[f.name].cast(f.type) for f in arrow_type],
        fields=list(arrow_type),
        mask=image.is_null() if image.null_count else None,
    )


def _change_keys(frame: ChangeFrame, arrow_type: pa.StructType, renames: dict[str, str] | None) -> pa.StructArray:
    """Each change's key: from the after image, or the before image of a delete."""
    source = {(renames.get(f.name, f.name) if renames else f.name): f.name for f in frame.after.type}
    has_after = frame.after.is_valid()
    return pa.StructArray.from_arrays(
        [
            pc.if_else(has_after, frame.after.field(source[f.name]), frame.before.field(source[f.name])).cast(f.type)
            for f in arrow_type
        ],
        fields=list(arrow_type),
    )
