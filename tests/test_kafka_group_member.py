"""A stage that stops in the middle of its group join (a task released or moved between workers at
that moment) must not leave the group unusable for the next member: on tansu a LeaveGroup before
the join settled left every later member waiting for ever (found by the chaos run). Against the
session's real broker."""

from __future__ import annotations

import time
import uuid

from confluent_kafka import Producer

from deploy.kafka import GroupMember, batch_consumer, ensure_topics


def test_a_member_closed_mid_join_leaves_the_group_usable(stack_settings):
    bootstrap, run = stack_settings.kafka_bootstrap, uuid.uuid4().hex[:6]
    topic, group = f"member-{run}", f"member-group-{run}"
    ensure_topics(bootstrap, [topic])
    producer = Producer({"bootstrap.servers": bootstrap})
    producer.produce(topic, key=b"k", value=b"v")
    producer.flush(10)

    first = GroupMember(batch_consumer(bootstrap, group), [topic])
    first.consumer.poll(0.5)  # the join has started, not settled
    first.close()

    second = GroupMember(batch_consumer(bootstrap, group), [topic])
    deadline, got = time.monotonic() + 45, None
    try:
        while got is None and time.monotonic() < deadline:
            msg = second.consumer.poll(0.5)
            if msg is not None and not msg.error():
                got = msg.value()
    finally:
        second.close()
    assert got == b"v", "the next member of the group never got its partition"
