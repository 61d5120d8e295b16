"""Micro-batch processing shared by every runner (Faust, lean confluent-kafka, benchmarks).

A batch of raw Kafka messages is decoded into one polars frame per writer schema
(schemas.frames), its row images transformed and checked by the rule
set in one vectorised pass, then split: valid events re-encoded for the clean topic, failing or
undecodable ones wrapped in a quarantine record with rule ids, reasons and the original bytes.
The runner publishes both lists and commits its input only after the broker acknowledged them.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import polars as pl
import pyarrow as pa

from quality_stream import LookupTable, RuleSet
from quality_stream.frame import frame_to_rows
from schemas.envelope import QUARANTINE_SCHEMA
from schemas.frames import FrameDecoder, FrameRun
from schemas.naming import clean_topic, quarantine_topic, value_subject
from schemas.serde import WireCodec
from streams.transforms import TransformConfigError, build_transforms


@dataclass(slots=True)
class RawMessage:
    topic: str
    partition: int
    offset: int
    key: bytes | None
    value: bytes | None


class RawBatch:
    """A batch as columns (topic, key, value per message, in order) and where each came from, asked
    only for the messages that are quarantined: a runner hands its consumer's messages over without
    building an object per message (that was a third of the lean runner's per-message cost)."""

    __slots__ = ("topics", "keys", "values", "_origin")

    def __init__(self, topics: list[str], keys: list, values: list, origin: Callable[[int], tuple[int, int]]):
        self.topics, self.keys, self.values, self._origin = topics, keys, values, origin

    @classmethod
    def of(cls, messages: list[RawMessage]) -> RawBatch:
        return cls(
            [m.topic for m in messages],
            [m.key for m in messages],
            [m.value for m in messages],
            lambda i: (messages[i].partition, messages[i].offset),
        )

    @classmethod
    def of_kafka(cls, messages: list) -> RawBatch:
        """From confluent-kafka Message objects."""
        return cls(
            [m.topic() for m in messages],
            [m.key() for m in messages],
            [m.value() for m in messages],
            lambda i: (messages[i].partition(), messages[i].offset()),
        )

    def origin(self, i: int) -> tuple[int, int]:
        """(partition, offset) of message i."""
        return self._origin(i)

    def __len__(self) -> int:
        return len(self.values)


@dataclass(slots=True)
class Output:
    topic: str
    key: bytes | None
    value: bytes


@dataclass(slots=True)
class BatchResult:
    """One output per input message, in input order, as columns: `values[i]` goes to `topics[i]`
    with key `keys[i]` (the clean or the quarantine topic of the input's topic)."""

    topics: list[str] = field(default_factory=list)
    keys: list[bytes | None] = field(default_factory=list)
    values: list[bytes] = field(default_factory=list)
    read: int = 0
    valid: int = 0
    quarantined: int = 0
    by_rule: dict[str, int] = field(default_factory=dict)

    @property
    def outputs(self) -> list[Output]:
        return [Output(t, k, v) for t, k, v in zip(self.topics, self.keys, self.values)]

    def counts(self) -> dict[str, int]:
        return {
            "read": self.read,
            "valid": self.valid,
            "quarantined": self.quarantined,
            **{f"quarantined.{rule}": n for rule, n in self.by_rule.items()},
        }


ROW_DROPPING = {"filter", "dedupe"}


def _json_default(value: Any) -> str:
    return value.isoformat() if hasattr(value, "isoformat") else str(value)


# json.dumps(event, default=_json_default, ensure_ascii=False), without building an encoder per call
_EVENT_JSON = json.JSONEncoder(default=_json_default, ensure_ascii=False)
# The same encoder's C core, made once: JSONEncoder.encode builds it again for every event (about
# 40% of a quarantined event's JSON). No circular-reference check: a decoded event holds none.
_EVENT_JSON_CORE = (
    json.encoder.c_make_encoder(
        None, _json_default, json.encoder.encode_basestring, None, ": ", ", ", False, False, True
    )
    if json.encoder.c_make_encoder is not None
    else None
)


def _event_json(event: dict) -> str:
    return "".join(_EVENT_JSON_CORE(event, 0)) if _EVENT_JSON_CORE is not None else _EVENT_JSON.encode(event)


class BatchProcessor:
    """Decode, transform, check and split one micro-batch (see the module docstring).

    lookups: optional {table name: compacted topic}; needs `bootstrap`. Each topic is read from
    the beginning at construction (bounded to its end) and then followed in the background
    (streams.lookups.CompactedTopicLookup); the reference rules and lookup/enrich transforms
    naming that table see the same LookupTable. Call close() to stop the followers.
    """

    def __init__(
        self,
        codec: WireCodec,
        transforms: list[dict],
        rules: list[dict],
        stage: str = "runner",
        *,
        lookups: dict[str, str] | None = None,
        bootstrap: str | None = None,
        lookup_tables: dict[str, LookupTable] | None = None,
    ):
        self.codec = codec
        # Only the after-images are built for every record, with where each sits in its bytes: a
        # transformed row's new image replaces those bytes, and the whole event is decoded only
        # for the few rows that need it (quarantined: its JSON). Schemas the columnar reader
        # does not take come whole from polars' reader (no spans), and are re-encoded whole.
        self.decoder = FrameDecoder(codec, columns=["after"], spans_of="after", check_all=True)
        self._image_encoders: dict[int, Any] = {}  # schema id -> BatchEncoder of {after} alone, or None
        self.stage = stage
        for step in transforms:
            if step.get("kind") in ROW_DROPPING:
                # Refused when the pipeline is loaded, not when the first batch arrives: a runner
                # maps each output row back to its message, so a step that drops rows cannot run here.
                raise TransformConfigError(
                    step.get("kind"),
                    None,
                    "drops rows, which a runner cannot map back to "
                    "their messages; use a rule with severity reject (quarantine) or the "
                    "PyFlink job (streams/flink) for windowed dedupe",
                )
        self.lookup_feeds: dict[str, Any] = {}
        tables: dict[str, LookupTable] = dict(lookup_tables or {})
        if lookups:
            if not bootstrap:
                raise ValueError("lookups fed from topics need bootstrap=")
            from streams.lookups import CompactedTopicLookup

            for name, topic in lookups.items():
                feed = CompactedTopicLookup(bootstrap, topic, table=tables.get(name))
                tables[name] = feed.table
                self.lookup_feeds[name] = feed
            try:
                for feed in self.lookup_feeds.values():
                    feed.start()  # bounded initial load, then background follow
            except BaseException:
                self.close()
                raise
        self.lookups = tables
        # One LookupTable object per name, shared by rules and transforms, so an upsert from the
        # topic is seen by both on the next batch.
        self.transforms = build_transforms(transforms, lookups=tables)
        self.rules = RuleSet.from_config(rules, lookups=tables)
        self._quarantine_ids: dict[str, int] = {}
        self._to_encode: dict[int, list[tuple[int, dict]]] = {}  # this batch's quarantine records, by schema id
        self._clean_subjects: set[tuple[str, int]] = set()
        self._clean_topics: dict[str, str] = {}
        self._quarantine_topics: dict[str, str] = {}

    def close(self) -> None:
        for feed in self.lookup_feeds.values():
            feed.stop()

    def _quarantine_id(self, topic: str) -> int:
        qtopic = self._qtopic(topic)
        if qtopic not in self._quarantine_ids:
            self._quarantine_ids[qtopic] = self.codec.register(value_subject(qtopic), QUARANTINE_SCHEMA)
        return self._quarantine_ids[qtopic]

    def _qtopic(self, topic: str) -> str:
        q = self._quarantine_topics.get(topic)
        if q is None:
            q = self._quarantine_topics[topic] = quarantine_topic(topic)
        return q

    def _ctopic(self, topic: str) -> str:
        c = self._clean_topics.get(topic)
        if c is None:
            c = self._clean_topics[topic] = clean_topic(topic)
        return c

    def _register_clean(self, topic: str, schema_id: int) -> None:
        """The clean topic carries the source schema; list it under the clean topic's subject too."""
        if (topic, schema_id) not in self._clean_subjects:
            self.codec.register(value_subject(clean_topic(topic)), self.codec.schema_of(schema_id))
            self._clean_subjects.add((topic, schema_id))

    def _quarantine(
        self, batch: RawBatch, i: int, reason: str, violations: list[dict], event: dict | None, result: BatchResult
    ) -> None:
        """Output i becomes the quarantine record of message i (encoded with the batch's others)."""
        topic, key, value = batch.topics[i], batch.keys[i], batch.values[i]
        partition, offset = batch.origin(i)
        record = {
            "reason": reason,
            "stage": self.stage,
            "violations": violations,
            "original_topic": topic,
            "original_partition": partition,
            "original_offset": offset,
            "original_key": key,
            "original_value": value,
            "original_json": _event_json(event) if event else None,
            "ts_ms": int(time.time() * 1000),
        }
        result.topics[i] = self._qtopic(topic)
        self._to_encode.setdefault(self._quarantine_id(topic), []).append((i, record))
        result.quarantined += 1

    def _encode_quarantined(self, result: BatchResult) -> None:
        """The batch's quarantine records in one columnar pass per schema (fastavro, record by
        record, cost ~10-17 us each); record by record only if the columnar pass refuses."""
        for schema_id, pending in self._to_encode.items():
            records = [record for _, record in pending]
            try:
                values = self.codec.encode_many(schema_id, records)
            except Exception:  # noqa: BLE001 - encoded one by one, the same bytes
                values = [self.codec.encode(schema_id, record) for record in records]
            for (i, _), value in zip(pending, values):
                result.values[i] = value

    def process(self, batch: list[RawMessage] | RawBatch) -> BatchResult:
        if not isinstance(batch, RawBatch):
            batch = RawBatch.of(batch)
        n = len(batch)
        # Every message has one output, at its own index (per-key order downstream): its clean
        # topic and unchanged bytes unless it is quarantined or its row was transformed.
        result = BatchResult(topics=[None] * n, keys=list(batch.keys), values=list(batch.values), read=n)
        self._to_encode.clear()  # nothing left over from a batch that failed half way
        decoded = self.decoder.decode(batch.values)
        for i, reason in decoded.errors.items():
            self._quarantine(batch, i, f"undecodable: {reason}", [], None, result)
            result.by_rule["_undecodable"] = result.by_rule.get("_undecodable", 0) + 1
        for run in decoded.runs:
            self._process_run(batch, run, result)
        self._encode_quarantined(result)
        return result

    def _process_run(self, batch: RawBatch, run: FrameRun, result: BatchResult) -> None:
        frame = run.frame
        # Deletes carry no after-image: they pass through untouched (rules judge new data).
        images = frame.get_column("after")
        has_after = images.is_not_null()
        checked = has_after.arg_true().to_numpy()  # frame rows with an after-image
        rejected: dict[int, list] = {}  # frame row -> violations
        events: dict[int, dict] = {}  # frame row -> event dict, only for rows not forwarded as is
        if checked.size:
            before = (images if checked.size == frame.height else images.filter(has_after)).struct.unnest()
            after = self.transforms.apply_frame(before)
            if after.height != before.height:
                raise ValueError(
                    f"transforms changed the batch from {before.height} to {after.height} rows; "
                    "the processor needs one output row per input row"
                )
            verdicts = self.rules.evaluate_frame(after).rejected  # position in `checked` -> violations
            rejected = {int(checked[pos]): v for pos, v in verdicts.items()}
            is_rejected = np.zeros(checked.size, bool)
            is_rejected[list(verdicts)] = True
            same = _unchanged_rows(before, after)
            changed = np.flatnonzero(~same & ~is_rejected).tolist()
            if changed:  # transformed rows that pass: encoded as columns when the schema allows
                rows = checked[changed].tolist()
                if run.spans is None:
                    encoded = self._encode_changed(run, frame, after, rows, changed)
                else:
                    encoded = self._splice_changed(batch, run, after, rows, changed)
                if encoded is not None:
                    for row, value in zip(rows, encoded):
                        result.values[run.positions[row]] = value
                    same[changed] = True  # done: forwarded as the bytes just set
            need = np.flatnonzero(is_rejected | ~same).tolist()
            if need:
                rows = checked[need].tolist()
                whole = frame[rows] if run.spans is None else self._whole_events(batch, run, rows)
                events.update(zip(rows, _events_with_images(whole, frame_to_rows(after[need]))))

        positions, topics, out_topics = run.positions, batch.topics, result.topics
        clean_of = {t: self._ctopic(t) for t in {topics[i] for i in positions}}
        if len(rejected) < len(positions):  # some of the run goes to the clean topic
            for topic in clean_of:
                self._register_clean(topic, run.schema_id)
        # The common case: clean, bytes unchanged (Avro's binary encoding is canonical).
        if len(clean_of) == 1 and len(positions) == len(out_topics):  # one topic, the whole batch
            out_topics[:] = [next(iter(clean_of.values()))] * len(positions)
        else:
            for i in positions:
                out_topics[i] = clean_of[topics[i]]
        result.valid += len(positions)
        for row in sorted(events.keys() | rejected.keys()):  # the few that need more, each at its index
            i, violations = positions[row], rejected.get(row)
            if violations:
                as_dicts = [
                    {"rule_id": v.rule_id, "field": v.field, "message": v.message, "dimension": v.dimension}
                    for v in violations
                ]
                reason = "; ".join(f"{v.rule_id}: {v.message}" for v in violations)
                self._quarantine(batch, i, reason, as_dicts, events[row], result)
                result.valid -= 1
                for v in violations:
                    result.by_rule[v.rule_id] = result.by_rule.get(v.rule_id, 0) + 1
                continue
            try:
                result.values[i] = self.codec.encode(run.schema_id, events[row])
            except Exception as exc:  # a transform produced a value the schema cannot hold
                self._quarantine(batch, i, f"unencodable after transforms: {exc}", [], events[row], result)
                result.valid -= 1
                result.by_rule["_unencodable"] = result.by_rule.get("_unencodable", 0) + 1

    def _whole_events(self, batch: RawBatch, run: FrameRun, rows: list[int]) -> pl.DataFrame:
        """The whole events of frame `rows` of a run decoded for its after-images only."""
        return self.decoder.whole(run.schema_id, [batch.values[run.positions[row]] for row in rows])

    def _image_encoder(self, schema_id: int):
        """A BatchEncoder of a record holding only the schema's `after` field: its bytes are the
        field's bytes in an event (Avro concatenates a record's fields). None: not encodable so."""
        if schema_id not in self._image_encoders:
            from schemas.batch_avro import BatchEncoder, UnsupportedSchema
            from schemas.frames import reader_view

            fields = reader_view(self.codec.schema_of(schema_id))["fields"]
            after = next(f for f in fields if f["name"] == "after")
            try:
                encoder = BatchEncoder({"type": "record", "name": "AfterImage", "fields": [after]})
            except UnsupportedSchema:
                encoder = None
            self._image_encoders[schema_id] = encoder
        return self._image_encoders[schema_id]

    def _splice_changed(
        self, batch: RawBatch, run: FrameRun, after: pl.DataFrame, rows: list[int], positions: list[int]
    ) -> list[bytes] | None:
        """The events of frame `rows` with their transformed images (`after` rows `positions`): each
        record's bytes with its after-image's bytes replaced by the new image's, encoded in one
        columnar pass. The first is checked byte for byte against encoding its whole event on the
        record path (so a record whose other fields would not encode back to the same bytes is
        never spliced); None: the caller decodes the whole events and encodes them instead."""
        encoder = self._image_encoder(run.schema_id)
        if encoder is None:
            return None
        try:
            images = after[positions].to_struct("after").to_frame().to_arrow().to_struct_array()
            images = (images.combine_chunks() if isinstance(images, pa.ChunkedArray) else images).cast(
                encoder.arrow_type
            )
            encoded = encoder.encode_arrow(images)
        except (pa.ArrowException, pl.exceptions.PolarsError, ValueError, TypeError, OverflowError):
            return None
        starts, ends = run.spans[0][rows].tolist(), run.spans[1][rows].tolist()
        values, where = batch.values, run.positions
        spliced = [
            values[where[row]][:start] + image + values[where[row]][end:]
            for row, start, end, image in zip(rows, starts, ends, encoded)
        ]
        _, event = self.codec.decode(values[where[rows[0]]])
        return spliced if self._record_path_gives(spliced[0], run.schema_id, event, after[positions[:1]]) else None

    def _encode_changed(
        self, run: FrameRun, frame: pl.DataFrame, after: pl.DataFrame, rows: list[int], positions: list[int]
    ) -> list[bytes] | None:
        """The events of frame `rows` with their transformed images (`after` rows `positions`),
        encoded from Arrow in one pass; None when the record path must do it (a schema the columnar
        encoder does not cover, a value its type cannot hold). The first is checked byte for byte
        against the record path, so the two never differ."""
        target = self.codec.arrow_type(run.schema_id)
        if target is None or target.get_field_index("after") < 0:
            return None
        try:
            events = frame[rows].with_columns(after[positions].to_struct("after"))
            arrays = events.to_arrow().to_struct_array()
            arrays = (arrays.combine_chunks() if isinstance(arrays, pa.ChunkedArray) else arrays).cast(target)
            encoded = self.codec.encode_arrow(run.schema_id, arrays)
        except (pa.ArrowException, pl.exceptions.PolarsError, ValueError, TypeError, OverflowError):
            return None
        event = frame_to_rows(frame[rows[:1]])[0]
        return encoded if self._record_path_gives(encoded[0], run.schema_id, event, after[positions[:1]]) else None

    def _record_path_gives(self, value: bytes, schema_id: int, event: dict, image: pl.DataFrame) -> bool:
        """Whether `value` is what encoding `event` with the after-image `image` (one row) on the
        record path gives; False where that path cannot encode it (it then quarantines it)."""
        event["after"] = frame_to_rows(image)[0]
        try:
            return self.codec.encode(schema_id, event) == value
        except Exception:  # noqa: BLE001 - the record path quarantines it as unencodable
            return False


def _events_with_images(whole: pl.DataFrame, images: list[dict]) -> list[dict]:
    """The whole events' rows as dicts (frame_to_rows), each holding its new after-image in place
    of the decoded one: the decoded images (structs, the dearest column to turn into dicts) are
    never converted."""
    names = whole.columns
    columns = [images if name == "after" else whole.get_column(name).to_list() for name in names]
    if "after" not in names:  # where setting event["after"] would put it
        names, columns = [*names, "after"], [*columns, images]
    return [dict(zip(names, values)) for values in zip(*columns)]


def _unchanged_rows(before: pl.DataFrame, after: pl.DataFrame) -> np.ndarray:
    """Per row: did the transforms leave every value exactly as decoded (same column types, equal
    values; floats bit for bit, since 0.0 == -0.0 would encode differently)? Columnar, so an
    unchanged row never becomes a dict; a changed column type re-encodes every row."""
    if after.schema != before.schema:
        return np.zeros(after.height, bool)
    mask = pl.Series([True] * after.height)
    for name, dtype in before.schema.items():
        old, new = before.get_column(name), after.get_column(name)
        eq = new.eq_missing(old)
        if dtype.is_float():
            bits = f"i{8 if dtype == pl.Float64 else 4}"
            eq = eq & pl.Series(new.fill_null(0).to_numpy().view(bits) == old.fill_null(0).to_numpy().view(bits))
        mask = mask & eq
    return mask.to_numpy().copy()  # writable: the caller marks rows it re-encoded
