"""Micro-batch processing shared by every runner (Faust, lean confluent-kafka, benchmarks).

A batch of raw Kafka messages is decoded, its row images transformed and checked by the rule
set in one vectorised pass, then split: valid events re-encoded for the clean topic, failing or
undecodable ones wrapped in a quarantine record with rule ids, reasons and the original bytes.
The runner publishes both lists and commits its input only after the broker acknowledged them.
"""
from __future__ import annotations

import io
import json
import struct
import time
from dataclasses import dataclass, field
from typing import Any

import fastavro
import polars as pl

from quality_stream import LookupTable, RuleSet
from quality_stream.frame import frame_to_rows, rows_to_frame, uniform_frame
from schemas.envelope import QUARANTINE_SCHEMA
from schemas.naming import clean_topic, quarantine_topic, value_subject
from schemas.serde import UndecodableRecord, WireCodec
from streams.transforms import TransformConfigError, build_transforms

_HEADER = struct.Struct(">bI")  # the Confluent frame, as in schemas.serde


@dataclass(slots=True)
class RawMessage:
    topic: str
    partition: int
    offset: int
    key: bytes | None
    value: bytes | None


@dataclass(slots=True)
class Output:
    topic: str
    key: bytes | None
    value: bytes


@dataclass(slots=True)
class BatchResult:
    outputs: list[Output] = field(default_factory=list)
    read: int = 0
    valid: int = 0
    quarantined: int = 0
    by_rule: dict[str, int] = field(default_factory=dict)

    def counts(self) -> dict[str, int]:
        return {"read": self.read, "valid": self.valid, "quarantined": self.quarantined,
                **{f"quarantined.{rule}": n for rule, n in self.by_rule.items()}}


ROW_DROPPING = {"filter", "dedupe"}


def _json_default(value: Any) -> str:
    return value.isoformat() if hasattr(value, "isoformat") else str(value)


class BatchProcessor:
    """Decode, transform, check and split one micro-batch (see the module docstring).

    lookups: optional {table name: compacted topic}; needs `bootstrap`. Each topic is read from
    the beginning at construction (bounded to its end) and then followed in the background
    (streams.lookups.CompactedTopicLookup); the reference rules and lookup/enrich transforms
    naming that table see the same LookupTable. Call close() to stop the followers.
    """

    def __init__(self, codec: WireCodec, transforms: list[dict], rules: list[dict], stage: str = "runner", *,
                 lookups: dict[str, str] | None = None, bootstrap: str | None = None,
                 lookup_tables: dict[str, LookupTable] | None = None):
        self.codec = codec
        self.stage = stage
        for step in transforms:
            if step.get("kind") in ROW_DROPPING:
                # Refused when the pipeline is loaded, not when the first batch arrives: a runner
                # maps each output row back to its message, so a step that drops rows cannot run here.
                raise TransformConfigError(step.get("kind"), None, "drops rows, which a runner cannot map back to "
                                           "their messages; use a rule with severity reject (quarantine) or the "
                                           "PyFlink job (streams/flink) for windowed dedupe")
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

    def _quarantine(self, msg: RawMessage, reason: str, violations: list[dict], event: dict | None) -> Output:
        record = {
            "reason": reason, "stage": self.stage, "violations": violations,
            "original_topic": msg.topic, "original_partition": msg.partition, "original_offset": msg.offset,
            "original_key": msg.key, "original_value": msg.value,
            "original_json": json.dumps(event, default=_json_default, ensure_ascii=False) if event else None,
            "ts_ms": int(time.time() * 1000),
        }
        return Output(self._qtopic(msg.topic), msg.key, self.codec.encode(self._quarantine_id(msg.topic), record))

    def _decode(self, data: bytes | None) -> tuple[int, dict, bool]:
        """WireCodec.decode (same checks, same messages) plus whether the body was read to its last
        byte: only then may a record that leaves processing unchanged be forwarded as its input
        bytes instead of being encoded again (Avro's binary encoding of a value is canonical)."""
        if data is None or len(data) < 5:
            raise UndecodableRecord("record is shorter than the 5-byte Confluent header")
        magic, schema_id = _HEADER.unpack_from(data)
        if magic != 0:
            raise UndecodableRecord(f"unknown magic byte {magic} (expected 0, Confluent wire format)")
        parsed = self.codec.parsed(schema_id)
        body = io.BytesIO(data)
        body.seek(5)
        try:
            event = fastavro.schemaless_reader(body, parsed)
        except Exception as exc:
            raise UndecodableRecord(f"Avro body does not match schema id {schema_id}: {exc}") from exc
        return schema_id, event, body.tell() == len(data)

    def process(self, batch: list[RawMessage]) -> BatchResult:
        result = BatchResult(read=len(batch))
        outputs = result.outputs
        by_rule = result.by_rule
        decoded: list[tuple[RawMessage, int, dict]] = []
        exact: list[bool] = []
        for msg in batch:
            try:
                schema_id, event, whole = self._decode(msg.value)
            except UndecodableRecord as exc:
                outputs.append(self._quarantine(msg, f"undecodable: {exc}", [], None))
                result.quarantined += 1
                by_rule["_undecodable"] = by_rule.get("_undecodable", 0) + 1
                continue
            decoded.append((msg, schema_id, event))
            exact.append(whole)

        # Deletes carry no after-image: they pass through untouched (rules judge new data).
        checked = [i for i, (_, _, ev) in enumerate(decoded) if ev["after"] is not None]
        originals = [decoded[i][2]["after"] for i in checked]
        failed: dict[int, list] = {}
        unchanged: set[int] = set()
        if checked:
            # One frame per batch: transforms run on it and the rules judge the transformed frame.
            before = uniform_frame(originals)
            frame = self.transforms.apply_frame(before if before is not None else rows_to_frame(originals))
            if frame.height != len(checked):
                raise ValueError(f"transforms changed the batch from {len(checked)} to {frame.height} rows; "
                                 "the processor needs one output row per input row")
            verdict = self.rules.evaluate_frame(frame)
            failed = {checked[pos]: violations for pos, violations in verdict.rejected.items()}
            same = _unchanged_rows(before, frame)
            if same is None:
                rows = frame_to_rows(frame)
                for pos, i in enumerate(checked):
                    decoded[i][2]["after"] = rows[pos]
                unchanged = {checked[pos] for pos, (row, orig) in enumerate(zip(rows, originals)) if _same(row, orig)}
            else:
                # Only rows that changed or are quarantined need their transformed image as a dict;
                # an unchanged row's after-image equals its decoded one (same values, same types).
                need = [pos for pos in range(len(checked)) if pos in verdict.rejected or not same[pos]]
                if need:
                    for pos, row in zip(need, frame_to_rows(frame[need])):
                        decoded[checked[pos]][2]["after"] = row
                unchanged = {checked[pos] for pos, s in enumerate(same) if s}

        clean_topics = self._clean_topics
        for i, (msg, schema_id, event) in enumerate(decoded):
            violations = failed.get(i)
            if violations:
                as_dicts = [{"rule_id": v.rule_id, "field": v.field, "message": v.message, "dimension": v.dimension}
                            for v in violations]
                reason = "; ".join(f"{v.rule_id}: {v.message}" for v in violations)
                outputs.append(self._quarantine(msg, reason, as_dicts, event))
                result.quarantined += 1
                for v in violations:
                    by_rule[v.rule_id] = by_rule.get(v.rule_id, 0) + 1
                continue
            if exact[i] and (i in unchanged or event["after"] is None):
                # Decoding then encoding an unchanged record gives back its input bytes.
                value = msg.value
            else:
                try:
                    value = self.codec.encode(schema_id, event)
                except Exception as exc:  # a transform produced a value the schema cannot hold
                    outputs.append(self._quarantine(msg, f"unencodable after transforms: {exc}", [], event))
                    result.quarantined += 1
                    by_rule["_unencodable"] = by_rule.get("_unencodable", 0) + 1
                    continue
            if (msg.topic, schema_id) not in self._clean_subjects:
                self._register_clean(msg.topic, schema_id)
            ctopic = clean_topics.get(msg.topic) or self._ctopic(msg.topic)
            outputs.append(Output(ctopic, msg.key, value))
            result.valid += 1
        return result


# Column types whose values come back from polars as the very objects the Avro decoder made
# (same type, equal value); floats are left out because NaN equals itself in polars only.
def _exact(dtype: pl.DataType) -> bool:
    return dtype in (pl.Null, pl.Boolean, pl.Int64, pl.Utf8, pl.Date) or isinstance(dtype, pl.Datetime)


def _unchanged_rows(before: pl.DataFrame | None, after: pl.DataFrame) -> list[bool] | None:
    """Per row: did the transforms leave every value as decoded? Columnar, so unchanged rows never
    become dicts again. None (compare row dicts instead) unless the frame was built straight from
    the decoded rows (uniform_frame) and keeps the same columns and exact types."""
    if before is None or after.schema != before.schema or not all(map(_exact, before.schema.values())):
        return None
    if not before.width:
        return [True] * after.height
    mask = None
    for name in before.columns:
        eq = after.get_column(name).eq_missing(before.get_column(name))
        mask = eq if mask is None else mask & eq
    return mask.to_list()


def _same(row: dict, original: dict) -> bool:
    """Equal values of the same types (1 == 1.0 == True is not enough); the encoder writes fields
    in schema order, so key order does not matter, but it must match for the type comparison."""
    return (row == original and list(row) == list(original)
            and list(map(type, row.values())) == list(map(type, original.values())))
