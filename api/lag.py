"""Consumer lag per group, topic and partition, correct on Apache Kafka and on tansu.

tansu answers ListOffsets (and the fetch high watermark) with the last batch's base offset + 1,
not the log end, so `end - committed` from watermarks alone under-reports lag by up to a batch.
We therefore always confirm the end by reading the tail: a consumer starts at watermark-1 and
reads to the real end (bounded by a time budget); end = max(watermark, last offset read + 1).
On Apache Kafka that read returns one record and confirms the watermark (method `watermark`);
where it finds more, the method says `tail-read`. If the budget runs out the row says
`method: watermark-unconfirmed` (lag may be under-reported).
"""

from __future__ import annotations

import time
import uuid

from confluent_kafka import Consumer, ConsumerGroupTopicPartitions, KafkaError, TopicPartition
from confluent_kafka.admin import AdminClient

from deploy.kafka_security import client_config
from deploy.settings import Settings

NO_OFFSET = -1001


def _committed(admin: AdminClient, group: str, timeout: float) -> list[TopicPartition]:
    futures = admin.list_consumer_group_offsets([ConsumerGroupTopicPartitions(group)], request_timeout=timeout)
    return list(futures[group].result(timeout=timeout + 5).topic_partitions or [])


def groups(admin: AdminClient, timeout: float = 5.0) -> list[str]:
    result = admin.list_consumer_groups(request_timeout=timeout).result(timeout=timeout + 5)
    return sorted(g.group_id for g in result.valid)


def end_offsets(bootstrap: str, partitions: list[tuple[str, int]], budget: float = 5.0) -> dict:
    """(topic, partition) -> (low, end, method), confirming each high watermark by a tail read."""
    consumer = Consumer(
        {
            **client_config(bootstrap),
            "group.id": f"huiliu-lag-probe-{uuid.uuid4().hex[:8]}",
            "enable.auto.commit": False,
            "enable.partition.eof": True,
            "auto.offset.reset": "latest",
        }
    )
    try:
        marks, assign = {}, []
        for topic, part in partitions:
            low, high = consumer.get_watermark_offsets(TopicPartition(topic, part), timeout=budget)
            marks[(topic, part)] = (low, high)
            if high > low:
                assign.append(TopicPartition(topic, part, high - 1))
        last: dict[tuple[str, int], int] = {}
        pending = {(tp.topic, tp.partition) for tp in assign}
        if assign:
            consumer.assign(assign)
            deadline, idle_since = time.time() + budget, time.time()
            while pending and time.time() < deadline:
                msgs = consumer.consume(1000, 0.2)
                if not msgs and time.time() - idle_since > 1.0:
                    break  # nothing arrives although EOF was not signalled: treat as the end
                for m in msgs:
                    idle_since = time.time()
                    key = (m.topic(), m.partition())
                    if m.error():
                        if m.error().code() == KafkaError._PARTITION_EOF and m.offset() >= last.get(key, -1) + 1:
                            pending.discard(key)
                        continue
                    last[key] = max(last.get(key, -1), m.offset())
        out = {}
        for key, (low, high) in marks.items():
            end = max(high, last.get(key, -1) + 1)
            if high <= low:
                method = "watermark"  # empty partition: nothing to confirm
            elif key in pending and key not in last:
                method = "watermark-unconfirmed"
            else:
                method = "tail-read" if end > high else "watermark"
            out[key] = (low, end, method)
        return out
    finally:
        consumer.close()


def consumer_lag(
    settings: Settings, only_groups: list[str] | None = None, budget: float = 5.0, known: dict | None = None
) -> dict:
    """`known`: group -> {connector, topics, state, ...} of the sink connectors
    (connectors.sink_groups): shown even when the broker has no commit (or no group) for them,
    their uncommitted partitions with everything unread, each row with the connector's state."""
    admin = AdminClient(client_config(settings.kafka_bootstrap))
    metadata = admin.list_topics(timeout=budget)  # raises when the broker is unreachable, not "no groups"
    known = {g: v for g, v in (known or {}).items() if not only_groups or g in only_groups}
    names = only_groups if only_groups else sorted(set(groups(admin, budget)) | set(known))
    committed: dict[str, list[TopicPartition]] = {}
    errors = {}
    for g in names:
        try:
            committed[g] = [tp for tp in _committed(admin, g, budget) if tp.topic]
        except Exception as exc:  # a group that vanished or a broker without the API: report, go on
            if g not in known:
                errors[g] = f"{type(exc).__name__}: {exc}"
                continue
            committed[g] = []  # a sink's group the broker does not know (it never committed)
        if g in known:  # partitions of its topics it has not committed to yet
            have = {(tp.topic, tp.partition) for tp in committed[g]}
            for topic in known[g]["topics"]:
                parts = metadata.topics[topic].partitions if topic in metadata.topics else {}
                committed[g] += [TopicPartition(topic, p, NO_OFFSET) for p in sorted(parts) if (topic, p) not in have]
    wanted = sorted({(tp.topic, tp.partition) for tps in committed.values() for tp in tps})
    ends = end_offsets(settings.kafka_bootstrap, wanted, budget) if wanted else {}
    rows = []
    for g, tps in committed.items():
        for tp in sorted(tps, key=lambda t: (t.topic, t.partition)):
            low, end, method = ends[(tp.topic, tp.partition)]
            has = tp.offset is not None and tp.offset >= 0
            # No commit yet: the group would start at the earliest record (our consumers use earliest).
            lag = max(0, end - (tp.offset if has else low))
            rows.append(
                {
                    "group": g,
                    "topic": tp.topic,
                    "partition": tp.partition,
                    "committed": tp.offset if has else None,
                    "end": end,
                    "lag": lag,
                    "method": method,
                    **({"connector": known[g]["connector"], "state": known[g]["state"]} if g in known else {}),
                }
            )
    return {
        "partitions": rows,
        "groups": {g: {k: v for k, v in info.items() if k != "topics"} for g, info in known.items()},
        "errors": errors,
        "note": "end offsets are confirmed by reading each partition's tail (tansu's ListOffsets "
        "high watermark is the last batch's base offset + 1)",
    }


def lost_data(
    settings: Settings, only_groups: list[str] | None = None, budget: float = 5.0, tenant: str | None = None
) -> list[dict]:
    """Events the broker no longer has although they were acknowledged: a partition whose log ends
    below a consumer group's committed offset, a topic that vanished under a group's commits, and a
    source connector with stored offsets (it published and moved on) whose topic is gone. Each
    finding names topic, partition, the offsets and the source connectors that wrote the topic."""
    from connectors.store import ConnectorStore
    from connectors.topics import connector_topics
    from deploy.control import OffsetStore

    admin = AdminClient(client_config(settings.kafka_bootstrap))
    present = set(admin.list_topics(timeout=budget).topics)
    store = ConnectorStore.for_settings(settings)
    sources = [r for r in store.all() if r.kind == "source" and (tenant is None or r.tenant == tenant)]
    writes = {r.name: set(connector_topics(r, settings)) for r in sources}
    findings: list[dict] = []

    def finding(kind: str, topic: str, **more) -> None:
        writers = sorted(n for n, ts in writes.items() if topic in ts)
        findings.append({"kind": kind, "topic": topic, "writers": writers, **more})

    commits: dict[tuple[str, int], list[tuple[str, int]]] = {}
    for g in only_groups if only_groups else groups(admin, budget):
        try:
            tps = [tp for tp in _committed(admin, g, budget) if tp.topic and tp.offset is not None and tp.offset >= 0]
        except Exception:  # noqa: BLE001 - a group that vanished meanwhile
            continue
        for tp in tps:
            if tp.topic not in present:
                finding("topic_vanished", tp.topic, partition=tp.partition, group=g, committed=tp.offset, end=None)
            else:
                commits.setdefault((tp.topic, tp.partition), []).append((g, tp.offset))
    ends = end_offsets(settings.kafka_bootstrap, sorted(commits), budget) if commits else {}
    for (topic, part), by_group in commits.items():
        end = ends[(topic, part)][1]
        for g, offset in by_group:
            if offset > end:
                finding("log_below_committed", topic, partition=part, group=g, committed=offset, end=end)
    for record in sources:
        if not OffsetStore(settings.resolved_control_db_url, record.name).load_all():
            continue  # nothing published yet
        for topic in sorted(writes[record.name] - present):
            if not any(f["topic"] == topic for f in findings):
                finding("topic_vanished", topic, partition=None, group=None, committed=None, end=None)
    return findings
