"""Accept quarantined events as they are (a waiver): the steward decides the rules were right to
stop them but the data is to be used anyway, so the original event goes on to the clean topic.

    outputs = accepted(codec, runner_config, quarantined, bootstrap)   # AcceptRefused says why not
    publish(bootstrap, outputs)                                       # acknowledged, or DeliveryFailed

An accepted event takes the way a passing event takes: the pipeline's own transforms (the runner
config the pipeline deploys, so lookup transforms see the same reference tables), no rules, the
runner's own encoding, to the clean topic with the original key. It keeps its `source.sequence`,
so the sinks' row version orders it as it would have been ordered had it passed: a later change of
the row still wins. Nothing is half-done: every record is processed first and any that cannot go
(undecodable, or a transform output its schema cannot hold) refuses the whole request.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from deploy.kafka import AckedProducer
from schemas.naming import quarantine_topic
from schemas.serde import WireCodec
from streams.processor import BatchProcessor, Output, RawMessage


class AcceptRefused(ValueError):
    def __init__(self, position: tuple[int, int], msg: str, msg_zh: str):
        super().__init__(f"record {position[0]}:{position[1]}: {msg}")
        self.position, self.msg, self.msg_zh = position, msg, msg_zh


def _original(position: tuple[int, int], record: dict[str, Any]) -> RawMessage:
    if record.get("original_value") is None or not record.get("original_topic"):
        raise AcceptRefused(
            position, "the quarantined record keeps no original event", "该隔离记录没有保存原始事件，无法接受"
        )
    return RawMessage(
        record["original_topic"],
        record.get("original_partition") or 0,
        record.get("original_offset") or 0,
        record.get("original_key"),
        record["original_value"],
    )


def accepted(
    codec: WireCodec,
    runner_config: dict[str, Any],
    quarantined: Sequence[tuple[tuple[int, int], dict[str, Any]]],
    bootstrap: str,
) -> list[Output]:
    """The clean-topic outputs of `quarantined` ([((partition, offset), quarantine record)]) run through
    the transforms of `runner_config` (a runner connector document) without its rules."""
    originals = [_original(position, record) for position, record in quarantined]
    processor = BatchProcessor(
        codec,
        runner_config.get("transforms") or [],
        [],  # the waiver: no rule judges an accepted event
        stage=f"accept:{runner_config.get('pipeline') or 'runner'}",
        lookups=runner_config.get("lookups") or None,
        bootstrap=bootstrap,
    )
    try:
        result = processor.process(originals)
    finally:
        processor.close()
    quarantine_topics = {quarantine_topic(m.topic) for m in originals}
    for (position, _), out in zip(quarantined, result.outputs):
        if out.topic in quarantine_topics:  # the processor puts aside only what it cannot decode or encode
            raise AcceptRefused(
                position,
                "the original event cannot be decoded, or its transformed row does not fit its schema",
                "原始事件无法解码，或转换后的数据不符合其模式",
            )
    return result.outputs


def publish(bootstrap: str, outputs: list[Output]) -> None:
    producer = AckedProducer(bootstrap)
    for out in outputs:
        producer.produce(out.topic, out.value, out.key)
    producer.flush_acked()
