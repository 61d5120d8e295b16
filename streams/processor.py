"""Micro-batch processing shared by every runner (Faust, lean confluent-kafka, benchmarks).

A batch of raw Kafka messages is decoded, its row images transformed and checked by the rule
set in one vectorised pass, then split: valid events re-encoded for the clean topic, failing or
undecodable ones wrapped in a quarantine record with rule ids, reasons and the original bytes.
The runner publishes both lists and commits its input only after the broker acknowledged them.
"""
from __future__ import annotations

import json
import time
from dataclasses import dataclass, field
from typing import Any

from quality_stream import RuleSet
from schemas.envelope import QUARANTINE_SCHEMA
from schemas.naming import clean_topic, quarantine_topic, value_subject
from schemas.serde import UndecodableRecord, WireCodec
from streams.transforms import build_transforms


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


def _json_default(value: Any) -> str:
    return value.isoformat() if hasattr(value, "isoformat") else str(value)


class BatchProcessor:
    def __init__(self, codec: WireCodec, transforms: list[dict], rules: list[dict], stage: str = "runner"):
        self.codec = codec
        self.transforms = build_transforms(transforms)
        self.rules = RuleSet.from_config(rules)
        self.stage = stage
        self._quarantine_ids: dict[str, int] = {}
        self._clean_subjects: set[tuple[str, int]] = set()

    def _quarantine_id(self, topic: str) -> int:
        qtopic = quarantine_topic(topic)
        if qtopic not in self._quarantine_ids:
            self._quarantine_ids[qtopic] = self.codec.register(value_subject(qtopic), QUARANTINE_SCHEMA)
        return self._quarantine_ids[qtopic]

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
        return Output(quarantine_topic(msg.topic), msg.key, self.codec.encode(self._quarantine_id(msg.topic), record))

    def process(self, batch: list[RawMessage]) -> BatchResult:
        result = BatchResult(read=len(batch))
        decoded: list[tuple[RawMessage, int, dict]] = []
        for msg in batch:
            try:
                schema_id, event = self.codec.decode(msg.value)
                decoded.append((msg, schema_id, event))
            except UndecodableRecord as exc:
                result.outputs.append(self._quarantine(msg, f"undecodable: {exc}", [], None))
                result.quarantined += 1
                result.by_rule["_undecodable"] = result.by_rule.get("_undecodable", 0) + 1

        # Deletes carry no after-image: they pass through untouched (rules judge new data).
        checked = [i for i, (_, _, ev) in enumerate(decoded) if ev["after"] is not None]
        rows = self.transforms.apply([decoded[i][2]["after"] for i in checked]) if checked else []
        verdict = self.rules.evaluate(rows) if rows else None
        rejected = verdict.rejected if verdict else {}
        for pos, i in enumerate(checked):
            decoded[i][2]["after"] = rows[pos]

        failed = {checked[pos]: violations for pos, violations in rejected.items()}
        for i, (msg, schema_id, event) in enumerate(decoded):
            violations = failed.get(i)
            if violations:
                as_dicts = [{"rule_id": v.rule_id, "field": v.field, "message": v.message, "dimension": v.dimension}
                            for v in violations]
                reason = "; ".join(f"{v.rule_id}: {v.message}" for v in violations)
                result.outputs.append(self._quarantine(msg, reason, as_dicts, event))
                result.quarantined += 1
                for v in violations:
                    result.by_rule[v.rule_id] = result.by_rule.get(v.rule_id, 0) + 1
                continue
            try:
                value = self.codec.encode(schema_id, event)
            except Exception as exc:  # a transform produced a value the schema cannot hold
                result.outputs.append(self._quarantine(msg, f"unencodable after transforms: {exc}", [], event))
                result.quarantined += 1
                result.by_rule["_unencodable"] = result.by_rule.get("_unencodable", 0) + 1
                continue
            self._register_clean(msg.topic, schema_id)
            result.outputs.append(Output(clean_topic(msg.topic), msg.key, value))
            result.valid += 1
        return result
