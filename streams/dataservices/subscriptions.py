"""Real-time subscriptions to a service's clean topic, as server-sent events (issue 17).
The API's streams share one reader per topic (fanout.py); a TopicReader of a stream's own serves
one that is behind it (a resume, `start=earliest`, one too slow for the shared reader).

    plan = access_plan(...)                       # downloads.py: the checks of a call
    reader = TopicReader(bootstrap, registry_url, topic, resume=parse_event_id(last_event_id), start="latest")
    for partition, offset, value in reader.poll(500, 0.5): ...
    event = to_event(plan, value)                 # None when the row filter keeps the row out
    reader.event_id()                             # "0:41,1:17": the last offset delivered per partition

What a subscriber gets is what a call would give: the granted fields of the row after the change
(the row before it for a delete), masked, and only rows that pass the application's row filter.
An event's id names the last offset delivered on every partition, so `Last-Event-ID` resumes
exactly after it (nothing lost, nothing twice) whichever partition the next event comes from.
"""

from __future__ import annotations

import re
import uuid
from typing import Any

from deploy.kafka_security import client_config
from streams.dataservices.downloads import Plan
from streams.dataservices.serving import CallRefused

# -1: nothing delivered on that partition yet (an empty one's end is 0), as the ids say
_ID = re.compile(r"^\d{1,6}:(-1|\d{1,19})(,\d{1,6}:(-1|\d{1,19})){0,999}$")


def parse_event_id(text: str | None) -> dict[int, int] | None:
    """{partition: last offset delivered} from a Last-Event-ID; None without one; 422 if malformed."""
    if not text:
        return None
    if not _ID.match(text.strip()):
        raise CallRefused(
            422,
            "Last-Event-ID is not an event id of this stream (partition:offset,...)",
            "Last-Event-ID 不是本数据流的事件标识（分区:偏移量,...）",
        )
    return {int(p): int(o) for p, o in (pair.split(":") for pair in text.strip().split(","))}


def recheck(
    store, key: str | None, name: str, version: int, client_ip: str | None, key_id: str | None = None
) -> CallRefused | None:
    """Why a live subscription must end now (revoked, expired, offline, outside the allowlist), or
    None. Read from the control DB every time (a batch, an idle second): nothing is cached. A
    signed subscription (its signature checked when it opened) is re-checked by its `key_id`."""
    from streams.dataservices.access import Denied, check_expiry, check_ip
    from streams.dataservices.model import NotFound
    from streams.dataservices.serving import authorise

    try:
        if key_id is None:
            scope, app = authorise(store, key, name, version)
        else:
            found = store.grant(key_id)
            if found is None:
                return CallRefused(401, "unknown app key id", "应用密钥标识无效")
            scope, app, _ = found
            if app["status"] != "approved":
                return CallRefused(401, f"the app key is {app['status']}", f"应用密钥已失效（{app['status']}）")
            check_expiry(app)
            if (app["service"], app["version"]) != (name, version):
                return CallRefused(403, "the app key is for another service version", "该应用密钥不可调用此服务版本")
        store.published(scope, name, version)
        check_ip(app, client_ip)
    except CallRefused as exc:
        return exc
    except NotFound:
        return CallRefused(404, f"service {name} v{version} is not published", f"服务 {name} v{version} 未发布")
    except Denied as exc:
        return CallRefused(exc.status, exc.message, exc.message_zh)
    return None


def _image(value: Any) -> tuple[str, dict[str, Any] | None]:
    if isinstance(value, dict) and "op" in value and ("after" in value or "before" in value):
        op = str(value.get("op") or "u")
        row = value.get("before") if op == "d" else value.get("after")
        return op, row if isinstance(row, dict) else None
    return "r", value if isinstance(value, dict) else None


def to_event(plan: Plan, value: Any) -> dict[str, Any] | None:
    """The event a subscriber may see of one decoded record, or None (filtered out, no row)."""
    op, row = _image(value)
    if row is None:
        return None
    for f, wanted in (plan.app.get("row_filter") or {}).items():
        if str(row.get(f)) != str(wanted):
            return None
    out = {}
    for f in plan.fields:
        v = row.get(f)
        out[f] = plan.masks[f](v if v is None or isinstance(v, str) else str(v)) if f in plan.masks else v
    return {"op": op, "row": out}


class TopicReader:
    """One consumer assigned to every partition of the topic (no group: the position is the
    subscriber's, carried in its event ids), decoding Avro through the registry."""

    def __init__(
        self,
        bootstrap: str,
        registry_url: str,
        topic: str,
        resume: dict[int, int] | None,
        start: str,
        bounds=None,
        prefetch_kb: int = 4096,
    ):
        """`bounds(topic, partitions) -> {partition: (low, end)}` (the caller's, confirmed ends: tansu's
        watermark can lag) places a new subscription's start on every partition, so even its first
        event id names them all and a resume never falls back to `start` for a quiet partition.
        `prefetch_kb` caps what librdkafka fetches ahead (its default, 64 MB per reader, would let
        a slow subscriber's reader hold that much)."""
        from confluent_kafka import OFFSET_BEGINNING, OFFSET_END, Consumer, TopicPartition

        from schemas.serde import WireCodec

        self.topic = topic
        self.codec = WireCodec(registry_url)
        self.consumer = Consumer(
            {
                **client_config(bootstrap),
                "group.id": f"huiliu-sse-{uuid.uuid4().hex[:8]}",
                "enable.auto.commit": False,
                "auto.offset.reset": "earliest" if start == "earliest" else "latest",
                "fetch.wait.max.ms": 100,
                "queued.max.messages.kbytes": prefetch_kb,
            }
        )
        meta = self.consumer.list_topics(topic, timeout=10).topics.get(topic)
        if meta is None or meta.error is not None or not meta.partitions:
            self.consumer.close()
            raise CallRefused(503, f"the service's topic {topic!r} is not there", f"服务的数据主题 {topic!r} 不存在")
        default = OFFSET_BEGINNING if start == "earliest" else OFFSET_END
        self.positions: dict[int, int] = dict(resume or {})
        missing = [p for p in sorted(meta.partitions) if p not in self.positions]
        if bounds is not None and missing:
            for p, (low, end) in bounds(topic, missing).items():
                self.positions[p] = (low if start == "earliest" else end) - 1
        self.consumer.assign(
            [
                TopicPartition(topic, p, self.positions[p] + 1 if p in self.positions else default)
                for p in sorted(meta.partitions)
            ]
        )

    def poll(self, limit: int, timeout: float) -> list[tuple[int, int, Any]]:
        out = []
        for m in self.consumer.consume(limit, timeout):
            if m.error():
                continue
            try:
                value = self.codec.decode(m.value())[1] if m.value() is not None else None
            except ValueError:
                value = None  # a record that does not decode is skipped, its position still counts
            out.append((m.partition(), m.offset(), value))
        return out

    def delivered(self, partition: int, offset: int) -> None:
        self.positions[partition] = offset

    def event_id(self) -> str:
        return ",".join(f"{p}:{o}" for p, o in sorted(self.positions.items()))

    def close(self) -> None:
        self.consumer.close()
