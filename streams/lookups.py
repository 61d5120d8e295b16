"""Reference tables fed from compacted topics: key -> latest value, a tombstone deletes.

CompactedTopicLookup reads its topic from the beginning when started, up to the end as it was
then, so the first batch is judged against the whole table; afterwards a background thread keeps
consuming and upserts into the same LookupTable that the rules and transforms hold.

The end is not taken from the broker's high watermark: tansu reports the last batch's base
offset + 1, which stops short of the real end when the last batch holds several records. The
initial load instead reads until no record arrived for `settle_seconds` (after at least one
assignment, bounded overall by `load_timeout`). The watermark is only used as a lower bound
(never past the real end): the quiet window does not start before every partition was read up
to it, so a slow first fetch cannot end the load with an empty table.

Keys and values are decoded by `key_decoder` / `value_decoder` (default: UTF-8 text key, JSON
value, falling back to text); pass e.g. `lambda b: codec.decode(b)[1]` for Confluent Avro.
"""

from __future__ import annotations

import json
import logging
import threading
import time
import uuid
from collections.abc import Callable
from typing import Any

from confluent_kafka import OFFSET_BEGINNING, Consumer, KafkaError

from deploy.kafka_security import client_config
from quality_stream.lookup import LookupTable

log = logging.getLogger(__name__)


def text_key(data: bytes) -> str:
    return data.decode("utf-8")


def json_value(data: bytes) -> Any:
    text = data.decode("utf-8")
    try:
        return json.loads(text)
    except ValueError:
        return text


class CompactedTopicLookup:
    def __init__(
        self,
        bootstrap: str,
        topic: str,
        *,
        table: LookupTable | None = None,
        key_decoder: Callable[[bytes], Any] = text_key,
        value_decoder: Callable[[bytes], Any] = json_value,
        settle_seconds: float = 1.0,
        load_timeout: float = 60.0,
        poll_seconds: float = 0.2,
        consumer_extra: dict | None = None,
    ):
        self.topic = topic
        self.table = table if table is not None else LookupTable()
        self.key_decoder = key_decoder
        self.value_decoder = value_decoder
        self.settle_seconds = settle_seconds
        self.load_timeout = load_timeout
        self.poll_seconds = poll_seconds
        conf = {
            **client_config(bootstrap),
            # A private group that never commits: every start reads the table from the beginning.
            "group.id": f"huiliu-lookup-{topic}-{uuid.uuid4().hex[:8]}",
            "enable.auto.commit": False,
            "auto.offset.reset": "earliest",
            "session.timeout.ms": 6000,
            "heartbeat.interval.ms": 1000,
            "topic.metadata.refresh.interval.ms": 5000,
        }
        conf.update(consumer_extra or {})
        self._conf = conf
        self._consumer: Consumer | None = None
        self._thread: threading.Thread | None = None
        self._stop = threading.Event()
        self._lock = threading.Lock()  # one thread polls the consumer at a time
        self.applied = 0  # records applied (upserts + tombstones)
        self.errors = 0
        self.loaded = threading.Event()

    # -- applying records ---------------------------------------------------------------
    def apply(self, key: bytes | None, value: bytes | None) -> None:
        if key is None:
            return  # a compacted topic's records are keyed; an unkeyed one cannot be placed
        try:
            k = self.key_decoder(key)
            if value is None:
                self.table.delete(k)
            else:
                self.table.upsert(k, self.value_decoder(value))
            self.applied += 1
        except Exception as exc:  # one bad record must not stop the table from following
            self.errors += 1
            log.warning("lookup %s: record skipped: %s", self.topic, exc)

    def _poll_once(self, timeout: float) -> int:
        assert self._consumer is not None
        with self._lock:
            messages = self._consumer.consume(1000, timeout)
        n = 0
        for m in messages:
            if m.error():
                if m.error().code() != KafkaError._PARTITION_EOF:
                    log.warning("lookup %s: %s", self.topic, m.error())
                continue
            self.apply(m.key(), m.value())
            n += 1
        return n

    # -- life cycle ---------------------------------------------------------------------
    def load(self) -> int:
        """Bounded read from the beginning; returns the number of records applied."""
        if self._consumer is None:
            self._consumer = Consumer(self._conf)

            def from_beginning(consumer, partitions):
                for p in partitions:
                    p.offset = OFFSET_BEGINNING
                consumer.assign(partitions)

            self._consumer.subscribe([self.topic], on_assign=from_beginning)
        start = time.monotonic()
        applied = 0
        last_record = None
        while time.monotonic() - start < self.load_timeout:
            n = self._poll_once(self.poll_seconds)
            now = time.monotonic()
            if n:
                applied += n
                last_record = now
                continue
            assigned = bool(self._consumer.assignment())
            # Quiet for settle_seconds since the last record (or since assignment if the topic is empty).
            if assigned and self._behind_watermark():
                last_record = None
                continue
            if assigned:
                if last_record is None:
                    last_record = now
                if now - last_record >= self.settle_seconds:
                    break
        else:
            log.warning(
                "lookup %s: initial load still receiving after %.0fs; following from here",
                self.topic,
                self.load_timeout,
            )
        self.loaded.set()
        return applied

    def _behind_watermark(self) -> bool:
        """True while some partition's position is below its (possibly too low) high watermark."""
        assert self._consumer is not None
        try:
            for tp in self._consumer.position(self._consumer.assignment()):
                low, high = self._consumer.get_watermark_offsets(tp, timeout=2, cached=False)
                if high > low and (tp.offset < 0 or tp.offset < high):
                    return True
        except Exception as exc:  # a failed query only loses the lower bound, not the load
            log.debug("lookup %s: watermark query failed: %s", self.topic, exc)
        return False

    def start(self) -> CompactedTopicLookup:
        self.load()
        self._stop.clear()
        self._thread = threading.Thread(target=self._follow, name=f"lookup-{self.topic}", daemon=True)
        self._thread.start()
        return self

    def _follow(self) -> None:
        while not self._stop.is_set():
            try:
                self._poll_once(self.poll_seconds)
            except Exception as exc:  # keep following; the broker may come back
                self.errors += 1
                log.warning("lookup %s: poll failed: %s", self.topic, exc)
                self._stop.wait(1.0)

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=10)
            self._thread = None
        if self._consumer is not None:
            with self._lock:
                self._consumer.close()
            self._consumer = None

    def __enter__(self) -> CompactedTopicLookup:
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()
