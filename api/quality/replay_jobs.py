"""Bulk replay of a rule's quarantine as a message-centre job (issue 16): streams.quarantine_replay
.replay_rule in chunks, with progress and cancel between chunks (the domain is there; this is the
wiring to the jobs and the checks that can answer before anything is queued).

    check_fields(registry_url, raw_topic, changes)      # ReplayRefused: a field no version of the row has
    replay_job(settings, quarantine_topic, raw_topic, rule, changes, chunk)
        -> fn(ctx) for JobManager.submit("quality.quarantine.replay", ...)

The percentage is how far the reader got (`next_start`) between each partition's start and its end
offset when the job began (the runner may quarantine replayed rows again: the topic grows while it
is read, so 100 is said only once the read reached the end). A cancel stops after the current chunk;
what was produced is acknowledged and the result says how many were replayed and where the read
stopped (`next_start`, partition -> offset, where a later replay would go on).
"""

from __future__ import annotations

import json
import time
from typing import Any

from confluent_kafka.admin import AdminClient
from confluent_kafka.schema_registry import SchemaRegistryClient

from api.lag import end_offsets
from deploy.kafka_security import client_config
from schemas.naming import value_subject

# streams.quarantine_replay is imported where it is used: it loads numpy and pyarrow, which the API
# (importing this module with its routes) does not otherwise need (its idle memory, issue 17).

KIND = "quality.quarantine.replay"
CHUNK = 50_000  # quarantine records read per step: the reader's memory bound and the progress step


class ReplayJobRefused(Exception):
    """A correction the quarantined rows cannot take, found while the job ran (e.g. a delete event in
    a later chunk): the message says in both languages what and how many were replayed before."""


def check_fields(registry_url: str, raw_topic: str, changes: dict[str, Any]) -> None:
    """ReplayRefused (field `set.<name>`) when no registered version of the raw topic's row has a
    corrected field: refused now rather than as a failed job. Without the registry or the subject
    nothing is refused here; the replay itself still refuses what a row cannot take."""
    if not changes:
        return
    from streams.quarantine_replay import ReplayRefused

    client = SchemaRegistryClient({"url": registry_url})
    subject = value_subject(raw_topic)
    try:
        versions = client.get_versions(subject)
        known: set[str] = set()
        for version in versions:
            known |= _row_fields(json.loads(client.get_version(subject, version).schema.schema_str))
    except Exception:  # unreachable registry, no subject yet: the replay decides record by record
        return
    unknown = sorted(set(changes) - known)
    if known and unknown:
        raise ReplayRefused(f"set.{unknown[0]}", "the row has no such field", "行中没有该字段")


def _row_fields(schema: dict) -> set[str]:
    """Field names of the envelope's row record (`before` / `after`, a union with null; the record is
    written out where it first appears, `before` in schemas.envelope, and named in the other)."""
    for f in schema.get("fields") or []:
        if f.get("name") in ("before", "after"):
            kinds = f["type"] if isinstance(f["type"], list) else [f["type"]]
            for kind in kinds:
                if isinstance(kind, dict) and kind.get("type") == "record":
                    return {c["name"] for c in kind.get("fields") or []}
    return set()


def topic_span(bootstrap: str, topic: str) -> dict[int, tuple[int, int]]:
    """partition -> (first, end) offsets of the quarantine topic now (end confirmed by a tail read)."""
    # all topics: naming one may create it on a broker that auto-creates
    meta = AdminClient(client_config(bootstrap)).list_topics(timeout=10).topics.get(topic)
    if meta is None or meta.error is not None:
        return {}
    ends = end_offsets(bootstrap, [(topic, p) for p in sorted(meta.partitions)])
    return {p: (low, end) for (_, p), (low, end, _method) in ends.items()}


def percent(span: dict[int, tuple[int, int]], next_start: dict[int, int]) -> float:
    """How far the read got, 0-99.9 (100 is for the end of the read, see the module's doc)."""
    total = sum(end - low for low, end in span.values())
    if total <= 0:
        return 99.9
    done = sum(min(max(next_start.get(p, low), low), end) - low for p, (low, end) in span.items())
    return min(99.9, 100.0 * done / total)


def replay_job(settings, quarantine_topic: str, raw_topic: str, rule: str, changes: dict[str, Any], chunk: int = CHUNK):
    from streams.quarantine_replay import ReplayRefused, RuleReplay, replay_rule

    def run(ctx) -> dict[str, Any]:
        started = time.perf_counter()
        span = topic_span(settings.kafka_bootstrap, quarantine_topic)
        last = RuleReplay()

        def progress(done: RuleReplay) -> None:
            nonlocal last
            last = done
            ctx.progress(
                percent(span, done.next_start),
                f"规则 {rule}：已重放 {done.replayed:,} 条，已读 {done.scanned:,} 条隔离记录"
                f" / rule {rule}: {done.replayed:,} replayed, {done.scanned:,} quarantine records read",
            )

        ctx.progress(0.0, f"正在读取规则 {rule} 的隔离记录 / reading what rule {rule} quarantined")
        try:
            done = replay_rule(
                settings.kafka_bootstrap,
                settings.schema_registry_url,
                quarantine_topic,
                rule,
                changes,
                chunk=chunk,
                progress=progress,
                cancelled=ctx.cancelled,
            )
        except ReplayRefused as exc:
            raise ReplayJobRefused(
                f"{exc.field}：{exc.msg_zh}（此前已重放 {last.replayed:,} 条）"
                f" / {exc.field}: {exc.msg} ({last.replayed:,} replayed before)"
            ) from None
        result = {
            "rule": rule,
            "replayed": done.replayed,
            "scanned": done.scanned,
            "topic": raw_topic,
            "quarantine_topic": quarantine_topic,
            "next_start": {str(p): o for p, o in sorted(done.next_start.items())},
            "complete": done.complete,
            "steps": done.steps,
            "seconds": round(time.perf_counter() - started, 3),
        }
        if done.complete:
            ctx.progress(
                100.0,
                f"规则 {rule}：已重放 {done.replayed:,} 条到 {raw_topic}"
                f" / rule {rule}: {done.replayed:,} replayed to {raw_topic}",
            )
        return result  # cancelled: the job ends cancelled, with this result (how far it got)

    return run
