"""Lost data is detected, whatever the broker's storage (issue 19): a topic that vanished under a
consumer group's committed offsets, and a source connector's topic gone although the source stored
offsets for what it published; the `lost_data` alert names topic, partition, offsets and the
connector that can re-read the tables. Real broker, control DB and connector store."""

from __future__ import annotations

import time
import uuid

from confluent_kafka import Consumer, Producer
from confluent_kafka.admin import AdminClient, NewTopic

from api.alerts.rules import KINDS
from api.lag import lost_data
from connectors.document import parse
from connectors.store import ConnectorStore
from deploy.control import OffsetStore
from schemas.naming import topic_name

RUN = uuid.uuid4().hex[:6]


def test_vanished_topics_are_reported_with_the_connector_that_wrote_them(stack_settings):
    bootstrap = stack_settings.kafka_bootstrap
    admin = AdminClient({"bootstrap.servers": bootstrap})
    system, table = f"lost{RUN}", "people"
    topic = topic_name(stack_settings.topic_prefix, system, None, table)
    for future in admin.create_topics([NewTopic(topic, 1, 1)]).values():
        future.result(30)
    producer = Producer({"bootstrap.servers": bootstrap})
    for i in range(10):
        producer.produce(topic, value=f"event {i}".encode())
    assert producer.flush(30) == 0
    group = f"huiliu-connect-lost-sink-{RUN}"
    consumer = Consumer(
        {
            "bootstrap.servers": bootstrap,
            "group.id": group,
            "auto.offset.reset": "earliest",
            "enable.auto.commit": False,
            "session.timeout.ms": 6000,
        }
    )
    consumer.subscribe([topic])
    got, deadline = 0, time.time() + 60
    while got < 10 and time.time() < deadline:
        got += sum(1 for m in consumer.consume(100, 1.0) if m.error() is None)
    consumer.commit(asynchronous=False)
    consumer.close()
    assert got == 10

    # A source connector that published the topic and stored its offsets.
    name = f"lost-src-{RUN}"
    config = {
        "connector.class": "relational.timestamp",
        "url": f"sqlite:///{stack_settings.resolved_data_root / 'x.db'}",
        "system": system,
        "table": table,
        "timestamp_column": "ts",
    }
    spec, errors = parse(name, config, stack_settings)
    assert errors == []
    ConnectorStore.for_settings(stack_settings).create(spec)
    OffsetStore(stack_settings.resolved_control_db_url, name).save(table, {"ts": 1, "id": 10})
    assert not [f for f in lost_data(stack_settings) if f["topic"] == topic]

    for future in admin.delete_topics([topic], operation_timeout=30).values():  # the broker lost it
        future.result(30)
    found = [f for f in lost_data(stack_settings) if f["topic"] == topic]
    assert found and all(f["kind"] == "topic_vanished" and f["writers"] == [name] for f in found), found

    rule = {"name": "lost", "kind": "lost_data", "params": {}, "tenant": None}
    alerts = [a for a in KINDS["lost_data"](rule, stack_settings, {}, 0.0) if topic in a.subject]
    assert alerts and f"POST /connectors/{name}/snapshot" in alerts[0].body
    if any(f["group"] for f in found):  # the broker kept the group's commits: they are named too
        assert any("committed offset 10" in a.body for a in alerts)
    ConnectorStore.for_settings(stack_settings).delete(name)
