"""The SSE streams' shared reader (streams/dataservices/fanout.py, issue 17) on the real broker and
registry, driven through its interface in-process (the HTTP side: tests/test_service_sharing.py):
subscribers of one topic with different grants each get their own fields, masked, from one reader
that decodes each record once; a subscriber that stops reading is detached without holding up the
others, then goes on by itself from its own position (nothing lost, nothing twice) and joins again;
a resume from the past catches up on its own reader and joins; a revocation ends a stream at once."""

from __future__ import annotations

import asyncio
import json
import uuid

import pytest

from streams.dataservices.downloads import Plan
from streams.dataservices.fanout import Hubs, Stream, Subscriber
from streams.dataservices.subscriptions import TopicReader, parse_event_id
from streams.transforms.masking import resolve

ROW = {
    "type": "record",
    "name": "Row",
    "fields": [
        {"name": "id", "type": "long"},
        {"name": "name", "type": "string"},
        {"name": "phone", "type": "string"},
        {"name": "division_code", "type": "string"},
    ],
}
ENVELOPE = {
    "type": "record",
    "name": "Envelope",
    "fields": [
        {"name": "before", "type": ["null", ROW], "default": None},
        {"name": "after", "type": ["null", "Row"], "default": None},
        {"name": "op", "type": "string"},
    ],
}
MASKS = {"name": "name", "phone": "phone"}


def _plan(fields: list[str], row_filter: dict | None = None) -> Plan:
    specs = {f: m for f, m in MASKS.items() if f in fields}
    return Plan(
        scope="t",
        app={"row_filter": row_filter or {}, "expires_at": None},
        name="svc",
        version=1,
        table="t",
        columns={},
        fields=fields,
        where=[],
        order_by=[],
        masks={f: resolve(m) for f, m in specs.items()},
        mask_specs=specs,
    )


@pytest.fixture(scope="module")
def topic(stack_settings):
    from confluent_kafka import Producer
    from confluent_kafka.admin import AdminClient, NewTopic

    from schemas.naming import value_subject
    from schemas.serde import WireCodec

    name = f"clean.fanout_{uuid.uuid4().hex[:6]}"
    admin = AdminClient({"bootstrap.servers": stack_settings.kafka_bootstrap})
    admin.create_topics([NewTopic(name, 3, 1)])[name].result(30)  # event ids name three partitions
    codec = WireCodec(stack_settings.schema_registry_url)
    schema_id = codec.register(value_subject(name), ENVELOPE)
    producer = Producer({"bootstrap.servers": stack_settings.kafka_bootstrap, "linger.ms": 5})

    def produce(first: int, n: int, division: str = "370102") -> None:
        for i in range(first, first + n):
            row = {"id": i, "name": "欧阳娜娜", "phone": f"137{i:08d}", "division_code": division}
            value = codec.encode(schema_id, {"before": None, "after": row, "op": "c"})
            producer.produce(name, key=str(i).encode(), value=value)
        assert producer.flush(30) == 0

    return name, produce


class Collector:
    """Iterates a stream's events on the running loop, parsing what a client would."""

    def __init__(self, stream: Stream, read: bool = True):
        self.stream = stream
        self.gen = stream.events(self._connected, asyncio.to_thread)
        self.events: list[tuple[str | None, str, dict]] = []
        self.task = asyncio.create_task(self._run()) if read else None

    @staticmethod
    async def _connected() -> bool:
        return False

    def _parse(self, chunk: bytes) -> None:
        for block in chunk.decode().split("\n\n"):
            event_id, name, data = None, "message", None
            for line in block.split("\n"):
                if line.startswith("id: "):
                    event_id = line[4:]
                elif line.startswith("event: "):
                    name = line[7:]
                elif line.startswith("data: "):
                    data = json.loads(line[6:])
            if data is not None:
                self.events.append((event_id, name, data))

    async def _run(self) -> None:
        async for chunk in self.gen:
            self._parse(chunk)

    def ids(self) -> list[int]:
        return [d["row"]["id"] for _, name, d in self.events if name == "message"]

    async def until(self, n: int, timeout: float = 30.0) -> None:
        async def enough():
            while len(self.events) < n:
                await asyncio.sleep(0.02)

        await asyncio.wait_for(enough(), timeout)

    async def close(self) -> None:
        if self.task is not None:
            self.task.cancel()
            await asyncio.gather(self.task, return_exceptions=True)
        await self.gen.aclose()


def _wiring(stack_settings, topic: str, hubs: Hubs, gen: list[int], allowed: dict):
    def bounds(topic_name: str, parts: list[int]) -> dict[int, tuple[int, int]]:
        from api.lag import end_offsets  # confirmed ends, as the route's readers use

        found = end_offsets(stack_settings.kafka_bootstrap, [(topic_name, p) for p in parts])
        return {p: (low, end) for (_, p), (low, end, _method) in found.items()}

    def make_reader(resume, start, prefetch_kb=4096):
        return TopicReader(
            stack_settings.kafka_bootstrap,
            stack_settings.schema_registry_url,
            topic,
            resume,
            start,
            bounds,
            prefetch_kb,
        )

    key = (stack_settings.kafka_bootstrap, stack_settings.schema_registry_url, topic)

    def stream(plan: Plan, name: str) -> Stream:
        def still_allowed():
            return allowed.get(name)

        return Stream(key, make_reader, lambda: gen[0], Subscriber(plan, still_allowed, gen[0]), hubs)

    return stream


def _ascending(events) -> None:
    """Each event id names every partition, each position at or past the previous event's."""
    last: dict[int, int] = {}
    for event_id, name, _ in events:
        if name != "message":
            continue
        now = parse_event_id(event_id)
        assert sorted(now) == [0, 1, 2] and all(now[p] >= o for p, o in last.items()), (last, now)
        last = now


async def _settled(condition, timeout: float = 10.0) -> None:
    for _ in range(int(timeout / 0.05)):
        if condition():
            return
        await asyncio.sleep(0.05)
    raise AssertionError("not settled")


def test_one_reader_serves_grants_and_a_slow_subscriber_holds_nobody_up(stack_settings, topic):
    from streams.dataservices.serving import CallRefused

    name, produce = topic
    hubs = Hubs(queue_bytes=4000, idle_close_s=2.0)
    gen, allowed = [1], {}
    stream = _wiring(stack_settings, name, hubs, gen, allowed)

    async def scenario():
        a = stream(_plan(["id", "name", "phone"]), "a")
        b = stream(_plan(["id", "division_code"], {"division_code": "370102"}), "b")
        slow = stream(_plan(["id", "name", "phone"]), "slow")
        for s in (a, b, slow):
            await asyncio.to_thread(s.open, None, "latest")
        assert len(hubs.hubs) == 1 and a.hub is b.hub is slow.hub and a.own is b.own is slow.own is None
        fast_a, fast_b, lagging = Collector(a), Collector(b), Collector(slow, read=False)
        assert await anext(lagging.gen) == b"retry: 1000\n\n"  # connected, then reads nothing
        decoded = hubs.decoded
        for first in range(0, 300, 25):  # in steps the fast ones take before the next: only the slow one lags
            await asyncio.to_thread(produce, first, 25)
            await fast_a.until(first + 25)
            await fast_b.until(first + 25)
        await asyncio.to_thread(produce, 300, 10, "370103")
        await fast_a.until(310)
        # one reader decoded each record once for all three
        assert hubs.decoded - decoded == 310 and len(hubs.hubs) == 1
        assert sorted(fast_a.ids()) == list(range(310)) and sorted(fast_b.ids()) == list(range(300))
        rows_a = {d["row"]["id"]: d["row"] for _, _, d in fast_a.events}
        assert all(sorted(r) == ["id", "name", "phone"] for r in rows_a.values())
        assert rows_a[1] == {"id": 1, "name": "欧阳**", "phone": "137****0001"}
        assert all(sorted(d["row"]) == ["division_code", "id"] for _, _, d in fast_b.events)
        # the slow one was detached at its bound (4,000 bytes), not the others
        assert hubs.detached == 1 and slow.sub.detached and slow.sub not in slow.hub.subs
        assert slow.sub.queued <= 4000
        # it reads again: what was queued, then on its own reader, then back on the hub
        lagging.task = asyncio.create_task(lagging._run())
        await lagging.until(310)
        assert sorted(lagging.ids()) == list(range(310))
        _ascending(lagging.events)
        assert parse_event_id(lagging.events[-1][0]) == parse_event_id(fast_a.events[309][0])  # every partition's end
        await _settled(lambda: slow.own is None and slow.sub in slow.hub.subs)  # caught up: on the hub again
        # a resume from the past: its own reader until it has caught up, exactly after the id
        resumed = stream(_plan(["id", "phone"]), "resumed")
        await asyncio.to_thread(resumed.open, parse_event_id(fast_a.events[99][0]), "latest")
        assert resumed.own is not None
        again = Collector(resumed)
        await again.until(210)
        after = sorted(fast_a.ids()[100:310])  # what the 100th event's id had not seen, on every partition
        assert sorted(again.ids()) == after
        await _settled(lambda: resumed.own is None)  # caught up: on the hub
        await asyncio.to_thread(produce, 310, 5)
        for c, n in ((fast_a, 315), (lagging, 315), (again, 215)):
            await c.until(n)
        assert sorted(again.ids()) == after + list(range(310, 315)) and sorted(lagging.ids()) == list(range(315))
        for c in (fast_a, fast_b, lagging, again):
            _ascending(c.events)
        # revocation: the next batch's check ends the stream at once, nothing more is sent
        allowed["a"] = CallRefused(401, "the app key is revoked", "应用密钥已失效（revoked）")
        gen[0] += 1
        await asyncio.to_thread(produce, 315, 5)
        await fast_a.until(316, timeout=10)
        assert fast_a.events[-1][1] == "end" and fast_a.events[-1][2]["status"] == 401
        assert sorted(fast_a.ids()) == list(range(315)), "nothing after the revocation"
        await fast_b.until(305)
        for c in (fast_b, lagging, again):
            await c.close()
        await fast_a.close()

    asyncio.run(scenario())
    assert hubs.shared() == 0
