"""The processor's after-image path (only the after-images decoded for every record, a transformed
image's bytes put in place of the old image's) answers byte for byte what decoding and encoding
whole events answers: clean, transformed, rejected, unencodable, deleted and undecodable records,
two writer schemas in one batch, the population events of the runner benchmark."""

from __future__ import annotations

import random
import types
import uuid
from datetime import UTC, date, datetime
from decimal import Decimal

import pytest
import sqlalchemy.types as sa
from confluent_kafka.schema_registry import SchemaRegistryClient

import streams.processor
from connectors.base import CapturedTable
from deploy.demo.seed import person, population
from schemas.envelope import envelope_schema, make_event
from schemas.frames import FrameDecoder
from schemas.serde import WireCodec
from schemas.sqltypes import ColumnSpec
from streams.processor import BatchProcessor, RawMessage
from tests.benchmarks.bench_runner import RULES, TRANSFORMS
from tests.test_frames import COLUMNS as FRAME_COLUMNS
from tests.test_frames import SOURCE as FRAME_SOURCE

COLUMNS = [*FRAME_COLUMNS[:2], ColumnSpec("code", sa.String(), False), *FRAME_COLUMNS[2:]]  # `code`: not null
SOURCE = {**FRAME_SOURCE, "position": '{"lsn": "0/16B3748", "note": "长的位置说明"}', "sequence": 7}
EXTRA_TRANSFORMS = [{"kind": "trim", "fields": ["code"], "empty_to_null": True}]  # null code: unencodable
EXTRA_RULES = [{"id": "id_known", "kind": "required", "fields": ["person_id"]}]


def _row(i: int, rng: random.Random) -> dict:
    return {
        "id": i,
        "name": rng.choice([None, "", "  padded ", "张三", "x" * 30, f"n{i}"]),
        "code": rng.choice(["A1", " A2", "   ", "长的代码值超过十二字节"]),
        "amount": rng.choice([None, Decimal("12.34"), Decimal("-0.05")]),
        "born": date(1990, 5, 17),
        "seen": datetime(2026, 1, 2, 3, 4, 5, rng.randrange(10**6), tzinfo=UTC),
        "score": rng.choice([None, -0.0, 1.5, float("inf")]),
        "ok": rng.choice([None, True, False]),
    }


def _messages(codec: WireCodec) -> list[RawMessage]:
    rng = random.Random(7)
    now = datetime(2026, 12, 7, 12, 0, 0)
    people = [ColumnSpec(c.name, c.type, bool(c.nullable), bool(c.primary_key)) for c in population.columns]
    table = CapturedTable("t", "people", tuple(people), "t", "public")
    pid = codec.register("t.people-value", envelope_schema("t", "public", table.table, people))
    oid = codec.register("t.other-value", envelope_schema("t", "public", "other", COLUMNS))
    messages = []
    for i in range(400):
        if i % 5 == 4:
            op = rng.choice(["c", "u", "d"])
            before = _row(i, rng) if op != "c" else None
            after = _row(i, rng) if op != "d" else None
            value = codec.encode(oid, make_event(op, before, after, 10 + i, SOURCE))
        else:
            after = person(i, rng, now) if i % 17 else None
            value = codec.encode(
                pid, make_event("r" if after else "d", None if after else person(i, rng, now), after, i, SOURCE)
            )
        messages.append(RawMessage("t.people", i % 2, i, str(i).encode() if i % 9 else None, value))
    messages.insert(123, RawMessage("t.people", 0, 999, b"junk", b"\x00\x00\x00\x00\x01\xff"))
    # Text that is not UTF-8 in a field the after-image path does not keep: undecodable all the same.
    marked = codec.encode(pid, make_event("r", None, person(1, rng, now), 1, {**SOURCE, "position": "QQ"}))
    assert marked.count(b"\x04QQ") == 1
    messages.insert(200, RawMessage("t.people", 1, 998, b"bad", marked.replace(b"\x04QQ", b"\x04\xff\xfe")))
    return messages


@pytest.mark.parametrize("batch", [25, 401])
def test_after_image_path_answers_the_whole_event_paths_bytes(monkeypatch, batch):
    monkeypatch.setattr(streams.processor, "time", types.SimpleNamespace(time=lambda: 1_765_000_000.123))
    codec = WireCodec(SchemaRegistryClient.new_client({"url": f"mock://images-{uuid.uuid4().hex}"}))
    messages = _messages(codec)
    images = BatchProcessor(codec, TRANSFORMS + EXTRA_TRANSFORMS, RULES + EXTRA_RULES, stage="test")
    whole = BatchProcessor(codec, TRANSFORMS + EXTRA_TRANSFORMS, RULES + EXTRA_RULES, stage="test")
    whole.decoder = FrameDecoder(codec)  # whole events decoded, transformed ones encoded whole
    spliced = []
    splice = images._splice_changed

    def counted(*args):
        out = splice(*args)
        spliced.extend(out or [])
        return out

    images._splice_changed = counted
    undecodable = 0
    for start in range(0, len(messages), batch):
        chunk = messages[start : start + batch]
        got, expected = images.process(chunk), whole.process(chunk)
        assert (got.topics, got.keys, got.values) == (expected.topics, expected.keys, expected.values)
        assert got.counts() == expected.counts()
        undecodable += got.by_rule.get("_undecodable", 0)
    assert undecodable == 2
    assert len(spliced) >= 10  # transformed rows did go through the splice (the others: the whole path)


def test_runs_carry_the_after_images_spans():
    codec = WireCodec(SchemaRegistryClient.new_client({"url": f"mock://images-{uuid.uuid4().hex}"}))
    sid = codec.register("t.other-value", envelope_schema("t", "public", "other", COLUMNS))
    rng = random.Random(3)
    events = [make_event("u", _row(i, rng), _row(i, rng), i, SOURCE) for i in range(5)]
    values = [codec.encode(sid, e) for e in events]
    run = FrameDecoder(codec, columns=["after"], spans_of="after").decode(values).runs[0]
    assert run.frame.columns == ["after"]
    after_only = envelope_schema("t", "public", "other", COLUMNS)
    after_only = {**after_only, "fields": [after_only["fields"][0]]}  # `before`: the after-image's type
    for i, (value, event) in enumerate(zip(values, events)):
        start, end = int(run.spans[0][i]), int(run.spans[1][i])
        image = WireCodec(SchemaRegistryClient.new_client({"url": "mock://x"}))
        image_id = image.register("x-value", after_only)
        assert value[start:end] == image.encode(image_id, {"before": event["after"]})[5:]


def test_quarantined_events_json_is_json_dumps_text(monkeypatch):
    """original_json from the JSON encoder's C core made once is the text JSONEncoder.encode gives
    (json.dumps with the same default): decimals, dates, timestamps, inf, -0.0, CJK, nulls."""
    monkeypatch.setattr(streams.processor, "time", types.SimpleNamespace(time=lambda: 1_765_000_000.123))
    codec = WireCodec(SchemaRegistryClient.new_client({"url": f"mock://images-{uuid.uuid4().hex}"}))
    messages = _messages(codec)
    reject_all = [{"id": "no_id", "kind": "required", "fields": ["missing_field"]}]
    processor = BatchProcessor(codec, TRANSFORMS + EXTRA_TRANSFORMS, RULES + EXTRA_RULES + reject_all, stage="test")
    fast = processor.process(messages)
    monkeypatch.setattr(streams.processor, "_EVENT_JSON_CORE", None)  # JSONEncoder.encode for each event
    slow = processor.process(messages)
    assert fast.quarantined > 300
    assert (fast.topics, fast.keys, fast.values) == (slow.topics, slow.keys, slow.values)
    texts = [codec.decode(v)[1]["original_json"] for v, t in zip(fast.values, fast.topics) if "quarantine" in t]
    assert any("长" in t for t in texts if t) and any('"seen": "2026-01-02T03:04:05.' in t for t in texts if t)
