"""Free a consumer group that tansu (the local broker) left wedged by a departed leader.

tansu 0.6 keeps a group's leader when that leader sends LeaveGroup in the middle of a rebalance
(its `Forming` state removes the member but not the leader id): every later member is a follower
waiting for a leader that will never sync, for ever. A leader that dies instead is expired after
the session timeout, which clears it. So the way out is to give the group that expiry: join once
under the departed leader's member id and go silent; one session timeout later the coordinator
expires it, clears the leader, and the next member to join leads (found by tests/chaos, measured
in tests/test_kafka_group_member.py).

Only acts on tansu's own evidence: the group described in state "Unknown" (Kafka never reports a
live group so) and a leader that is not among its members (impossible on Kafka).
"""

from __future__ import annotations

import asyncio
import logging
import uuid

from deploy.kafka_security import aiokafka_security

log = logging.getLogger(__name__)

PROTOCOLS = ("range", "roundrobin", "cooperative-sticky")  # librdkafka's assignors; the group picks its own


async def _free(bootstrap: str, group: str, topics: list[str], session_ms: int) -> str | None:
    from aiokafka.client import AIOKafkaClient, CoordinationType
    from aiokafka.coordinator.protocol import ConsumerProtocolMemberMetadata
    from aiokafka.protocol.admin import DescribeGroupsRequest
    from aiokafka.protocol.group import JoinGroupRequest

    client = AIOKafkaClient(bootstrap_servers=bootstrap, client_id="huiliu-group-doctor", **aiokafka_security())
    try:
        await client.bootstrap()
        node = await client.coordinator_lookup(CoordinationType.GROUP, group)
        described = (await client.send(node, DescribeGroupsRequest([group]))).groups[0]
        state, members = described[2], {m[0] for m in described[5]}
        if state != "Unknown":
            return None
        metadata = ConsumerProtocolMemberMetadata(0, list(topics), b"").encode()

        def join(member_id: str) -> JoinGroupRequest:
            protocols = [(name, metadata) for name in PROTOCOLS]
            return JoinGroupRequest(group, session_ms, session_ms, member_id, None, "consumer", protocols)

        # A probe member learns who the group waits for (it is expired after the session timeout too).
        probe = f"huiliu-group-doctor-{uuid.uuid4()}"
        leader = (await client.send(node, join(probe))).leader_id
        if not leader or leader == probe or leader in members:
            return None
        await client.send(node, join(leader))  # then silence: the coordinator expires it, and the leader with it
        return leader
    finally:
        await client.close()


def free_wedged_group(bootstrap: str, group: str, topics: list[str], session_ms: int = 10000) -> str | None:
    """If `group` waits for a leader that left, make the coordinator expire it; returns that
    leader's member id, or None when the group was not wedged so."""
    leader = asyncio.run(asyncio.wait_for(_free(bootstrap, group, topics, session_ms), timeout=60))
    if leader:
        log.warning(
            "consumer group %s waited for a departed leader %s: freed (expires in %d ms)", group, leader, session_ms
        )
    return leader
