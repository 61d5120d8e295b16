"""A stage that stops in the middle of its group join (a task released or moved between workers at
that moment) must not leave the group unusable for the next member: on tansu a LeaveGroup by the
leader before the join settled left every later member waiting for ever (found by the chaos run);
and a group wedged so anyway is freed by the member's watcher. Against the session's real broker."""

from __future__ import annotations

import asyncio
import time
import uuid

from confluent_kafka import Producer

from deploy.kafka import GroupMember, batch_consumer, ensure_topics
from deploy.kafka_groups import free_wedged_group


def _topic_with_one_record(bootstrap: str, name: str) -> tuple[str, str]:
    """A fresh topic holding one record (b"v") and a fresh group name for it."""
    run = uuid.uuid4().hex[:6]
    topic, group = f"{name}-{run}", f"{name}-group-{run}"
    ensure_topics(bootstrap, [topic])
    producer = Producer({"bootstrap.servers": bootstrap})
    producer.produce(topic, key=b"k", value=b"v")
    producer.flush(10)
    return topic, group


def test_a_member_closed_mid_join_leaves_the_group_usable(stack_settings):
    bootstrap = stack_settings.kafka_bootstrap
    topic, group = _topic_with_one_record(bootstrap, "member")

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


async def _wedge(bootstrap: str, group: str, topic: str) -> None:
    """What a task moved at the wrong moment did: the group's leader joins and leaves before it syncs.
    Raw protocol requests (aiokafka's), because librdkafka cannot be stopped at that point on purpose."""
    from aiokafka.client import AIOKafkaClient, CoordinationType
    from aiokafka.coordinator.protocol import ConsumerProtocolMemberMetadata
    from aiokafka.protocol.group import JoinGroupRequest, LeaveGroupRequest

    client = AIOKafkaClient(bootstrap_servers=bootstrap)
    await client.bootstrap()
    try:
        node = await client.coordinator_lookup(CoordinationType.GROUP, group)
        metadata = ConsumerProtocolMemberMetadata(0, [topic], b"").encode()
        # the first join sets the group's session timeout: 3 s keeps the test short
        joined = await client.send(
            node, JoinGroupRequest(group, 3000, 3000, "leaver", None, "consumer", [("range", metadata)])
        )
        assert joined.leader_id == "leaver"
        await client.send(node, LeaveGroupRequest(group, "leaver"))
    finally:
        await client.close()


def _first_value(member: GroupMember, seconds: float) -> bytes | None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        msg = member.consumer.poll(0.5)
        if msg is not None and not msg.error():
            return msg.value()
    return None


def test_a_group_wedged_by_its_departed_leader_is_freed_by_the_watcher(stack_settings):
    bootstrap = stack_settings.kafka_bootstrap
    topic, group = _topic_with_one_record(bootstrap, "wedged")
    asyncio.run(_wedge(bootstrap, group, topic))

    blind = GroupMember(batch_consumer(bootstrap, group), [topic], settle_seconds=0)  # no watcher
    try:
        assert _first_value(blind, 8) is None, "the broker no longer wedges such a group: retire deploy.kafka_groups"
    finally:
        blind.close()

    member = GroupMember(batch_consumer(bootstrap, group), [topic], bootstrap=bootstrap, group=group, stuck_seconds=4)
    try:
        got = _first_value(member, 60)
    finally:
        member.close()
    assert got == b"v", "the watcher did not free the wedged group"
    assert member.freed == ["leaver"]


def test_the_doctor_leaves_a_healthy_group_alone(stack_settings):
    bootstrap = stack_settings.kafka_bootstrap
    topic, group = _topic_with_one_record(bootstrap, "healthy")
    member = GroupMember(batch_consumer(bootstrap, group), [topic])
    try:
        assert _first_value(member, 30) == b"v"
        assert free_wedged_group(bootstrap, group, [topic]) is None
        member.consumer.poll(1)
        assert member.settled, "the doctor disturbed a settled group"
    finally:
        member.close()
