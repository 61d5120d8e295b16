"""Per-subscriber derived topics (issue 17, real-time subscription option (a)): for a Kafka-native
subscriber, a runner copies the service's clean topic to a topic of the application's own, carrying
only its granted fields, masked as a call masks them, and only rows passing its row filter.

    names = derived_names(source_topic, app)   # {"topic": ..., "group": ...}: what the subscriber reads with
    task = DerivedTopicTask(DerivedTopicConfig(key_id=..., service=..., version=...), settings)
    task.run(stop)                              # the processor plugin `runner.subscription` (a worker runs it)

Every batch re-reads the grant from the control DB (approved, not expired, the version still
published) and the catalogue classification (a steward's change applies to the next batch): a
revoked or expired application, or a version taken offline, stops the runner before it writes
another record. Records are JSON `{"op": "c|u|d|r", "row": {...}}` keyed as the input, so any
Kafka client reads them without the registry. Input offsets are committed only after the broker
acknowledged the batch's outputs (at-least-once, as the pipeline runners).

Not done here: broker ACLs binding the derived topic to the application's own Kafka principal
(the test broker, tansu, has no ACLs); the names above are what such ACLs would grant.
"""

from __future__ import annotations

import json
import logging
import threading
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

log = logging.getLogger(__name__)


class DerivedTopicConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")
    key_id: str = Field(min_length=1, max_length=40, description="the approved application's key id")
    service: str = Field(min_length=1, max_length=100)
    version: int = Field(ge=1)
    batch_size: int = Field(500, gt=0, le=100_000)
    batch_seconds: float = Field(0.5, gt=0, le=60)


def derived_names(source_topic: str, app: dict[str, Any]) -> dict[str, str]:
    """The subscriber's topic and the consumer group it may use (valid Kafka names: the application's
    name is [a-z0-9_], its id a number)."""
    base = f"{source_topic}.sub.{app['application']}.{app['id']}"
    return {"topic": base, "group": f"huiliu-sub-{app['application']}-{app['id']}"}


class Stopped(Exception):
    """The grant no longer holds: the runner ends without writing another record."""


class DerivedTopicTask:
    def __init__(self, config: DerivedTopicConfig, settings, store=None):
        from deploy.control import engine_for
        from schemas.catalog.store import CatalogStore
        from streams.dataservices.store import ServiceStore

        self.config = config
        self.settings = settings
        engine = engine_for(settings.resolved_control_db_url)
        self.store = store or ServiceStore(engine)
        self.catalog = CatalogStore(engine)
        self.written = 0

    # -- the grant, read on every batch -----------------------------------------------------------
    def plan(self):
        """(source topic, target names, a downloads.Plan of granted fields and masks); Stopped when
        the grant no longer holds."""
        from streams.dataservices.access import Denied, check_expiry
        from streams.dataservices.downloads import Plan
        from streams.dataservices.model import NotFound
        from streams.dataservices.serving import CallRefused, field_masks
        from streams.transforms.masking import resolve

        found = self.store.grant(self.config.key_id)
        if found is None:
            raise Stopped("unknown key id")
        scope, app, _ = found
        if app["status"] != "approved":
            raise Stopped(f"application {app['id']} is {app['status']}")
        try:
            check_expiry(app)
            spec = self.store.published(scope, self.config.service, self.config.version)
        except Denied as exc:
            raise Stopped(exc.message) from None
        except NotFound as exc:
            raise Stopped(str(exc)) from None
        if (app["service"], app["version"]) != (self.config.service, self.config.version):
            raise Stopped("the key is for another service version")
        if not spec.resource.topic:
            raise Stopped(f"service {spec.name} names no topic")
        granted = [f for f in spec.fields if f in (app["fields_granted"] or [])]
        try:
            masks = field_masks(spec, scope, granted, self._classify)
        except CallRefused as exc:  # the catalogue entry is gone: stop rather than write clear data
            raise Stopped(exc.message) from None
        plan = Plan(
            scope=scope,
            app=app,
            name=self.config.service,
            version=self.config.version,
            table=spec.resource.table,
            columns={},
            fields=granted,
            where=[],
            order_by=[],
            masks={f: resolve(m) for f, m in masks.items()},
        )
        return spec.resource.topic, derived_names(spec.resource.topic, app), plan

    def _classify(self, scope: str, urn: str) -> dict[str, str | None]:
        ds = self.catalog.dataset({scope}, urn)
        default = ds["business"].get("classification")
        return {f["name"]: f["business"].get("classification") or default for f in ds["fields"]}

    # -- the runner ---------------------------------------------------------------------------------
    def run(self, stop: threading.Event) -> None:
        from confluent_kafka import Producer

        from deploy.kafka import batch_consumer, consume_records, ensure_topics
        from deploy.kafka_security import client_config
        from schemas.serde import WireCodec
        from streams.dataservices.subscriptions import to_event
        from streams.topics_browse import plain

        try:
            source, names, plan = self.plan()
        except Stopped as exc:
            log.warning("derived topic of %s not started: %s", self.config.key_id, exc)
            return
        bootstrap = self.settings.kafka_bootstrap
        ensure_topics(bootstrap, [names["topic"]])
        codec = WireCodec(self.settings.schema_registry_url)
        consumer = batch_consumer(bootstrap, f"huiliu-derive-{self.config.key_id}")
        producer = Producer({**client_config(bootstrap), "linger.ms": 20})
        try:
            if not self._assign(consumer, source, stop):
                return
            while not stop.is_set():
                batch = consume_records(consumer, self.config.batch_size, self.config.batch_seconds)
                if not batch:
                    continue
                try:
                    _, names, plan = self.plan()  # revocation, expiry, offline: before writing anything more
                except Stopped as exc:
                    log.warning("derived topic %s stopped: %s", names["topic"], exc)
                    return
                for m in batch:
                    try:
                        value = codec.decode(m.value())[1] if m.value() is not None else None
                    except ValueError:
                        continue  # not decodable: nothing a subscriber may see
                    event = to_event(plan, plain(value))
                    if event is not None:
                        data = json.dumps(event, ensure_ascii=False, default=str).encode()
                        producer.produce(names["topic"], key=m.key(), value=data)
                        self.written += 1
                if producer.flush(30) != 0:
                    raise RuntimeError(f"the broker did not acknowledge the outputs to {names['topic']}")
                consumer.commit(asynchronous=False)
        finally:
            consumer.close()

    @staticmethod
    def _assign(consumer, topic: str, stop: threading.Event) -> bool:
        """Every partition of the clean topic from the group's committed offsets (the beginning at
        first). Assigned, not subscribed: the runner is its group's only member, and a group join
        took tens of seconds on the local broker."""
        from confluent_kafka import OFFSET_BEGINNING, TopicPartition

        while not stop.is_set():
            meta = consumer.list_topics(topic, timeout=10).topics.get(topic)
            if meta is not None and meta.error is None and meta.partitions:
                parts = [TopicPartition(topic, p) for p in sorted(meta.partitions)]
                committed = consumer.committed(parts, timeout=10)
                consumer.assign(
                    [
                        TopicPartition(topic, tp.partition, tp.offset if tp.offset >= 0 else OFFSET_BEGINNING)
                        for tp in committed
                    ]
                )
                return True
            stop.wait(2.0)  # the clean topic does not exist yet
        return False


def derived_topic_plugin(config: DerivedTopicConfig, ctx) -> DerivedTopicTask:
    return DerivedTopicTask(config, ctx.settings)
