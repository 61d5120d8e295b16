"""Drive a log-CDC source runtime by hand and check what reached its topic: pump the runtime,
write concurrently to the source table, read the topic back and replay its events per key."""

from __future__ import annotations

import random
import threading
import time
import uuid

from confluent_kafka import OFFSET_BEGINNING, Consumer, TopicPartition

from connectors.runtime import SourceRuntime
from schemas.serde import WireCodec


def libpq(url: str) -> str:
    return url.replace("postgresql+psycopg://", "postgresql://")


# --- shared helpers (the MySQL tests use them too) ---------------------------------------------
def make_runtime(settings, task, control_db: str) -> SourceRuntime:
    return SourceRuntime(
        task,
        bootstrap=settings.kafka_bootstrap,
        codec=WireCodec(settings.schema_registry_url),
        control_db_url=control_db,
        topic_prefix=f"cdc{uuid.uuid4().hex[:6]}",
    )


def pump(runtime: SourceRuntime, seconds: float) -> None:
    end = time.time() + seconds
    while time.time() < end:
        if not runtime.run_once():
            time.sleep(0.05)


def pump_until(runtime: SourceRuntime, done, timeout: float) -> None:
    deadline = time.time() + timeout
    while time.time() < deadline and not done():
        if not runtime.run_once():
            time.sleep(0.05)


def drain_quiet(runtime: SourceRuntime, quiet: float = 1.5, timeout: float = 40.0) -> None:
    """Run until nothing new arrived for `quiet` seconds (covers a reconnect backoff)."""
    deadline, last = time.time() + timeout, time.time()
    while time.time() < deadline and time.time() - last < quiet:
        if runtime.run_once():
            last = time.time()
        else:
            time.sleep(0.05)


def consume(settings, topic: str, idle: float = 2.5, timeout: float = 60.0) -> list[dict]:
    codec = WireCodec(settings.schema_registry_url)
    consumer = Consumer(
        {
            "bootstrap.servers": settings.kafka_bootstrap,
            "group.id": f"cdc-{uuid.uuid4().hex}",
            "auto.offset.reset": "earliest",
            "enable.auto.commit": False,
        }
    )
    consumer.assign([TopicPartition(topic, 0, OFFSET_BEGINNING)])  # no group join: tansu's is slow
    out: list[dict] = []
    deadline, last = time.time() + timeout, time.time()
    try:
        while time.time() < deadline and time.time() - last < idle:
            msg = consumer.poll(0.5)
            if msg is None or msg.error():
                continue
            out.append(codec.decode(msg.value())[1])
            last = time.time()
    finally:
        consumer.close()
    return out


def replay(events: list[dict], key: str = "id") -> dict[int, int]:
    """Apply the events in topic order, asserting each key's versions run without gap or repeat."""
    state: dict[int, int] = {}
    seen: set[int] = set()
    for ev in events:
        img = ev["after"] if ev["after"] is not None else ev["before"]
        k, op = img[key], ev["op"]
        if op in ("r", "c"):
            assert k not in state and (op == "r" or k not in seen), f"key {k}: {op} twice: {ev['source']}"
            assert op == "r" or ev["after"]["ver"] == 0, f"key {k}: insert with ver {ev['after']['ver']}"
            state[k] = ev["after"]["ver"]
        else:
            assert k in state, f"key {k}: {op} without an earlier image (lost insert?)"
            assert ev["before"]["ver"] == state[k], f"key {k}: before ver {ev['before']['ver']} != {state[k]}"
            if op == "u":
                assert ev["after"]["ver"] == state[k] + 1, f"key {k}: ver {state[k]} -> {ev['after']['ver']}"
                state[k] = ev["after"]["ver"]
            else:
                del state[k]
        seen.add(k)
    return state


class Writer(threading.Thread):
    """Random small transactions (insert new key / bump ver / delete); survives lost connections."""

    def __init__(self, connect, table: str, first_new_id: int, low_id: int = 10, pause: float = 0.002):
        super().__init__(daemon=True)
        self.connect, self.table, self.next_id, self.low_id, self.pause = connect, table, first_new_id, low_id, pause
        self.stop, self.commits, self.rnd = threading.Event(), 0, random.Random(7)

    def step(self, cur) -> None:
        t, k = self.table, self.rnd.randint(self.low_id, self.next_id - 1)
        choice = self.rnd.random()
        if choice < 0.3:
            cur.execute(f"INSERT INTO {t} (id, ver, note) VALUES ({self.next_id}, 0, 'new')")
            self.next_id += 1
        elif choice < 0.9:
            cur.execute(f"UPDATE {t} SET ver = ver + 1, note = 'u' WHERE id = {k}")
        else:
            cur.execute(f"DELETE FROM {t} WHERE id = {k}")

    def run(self) -> None:
        conn = None
        while not self.stop.is_set():
            try:
                conn = conn or self.connect()
                cur = conn.cursor()
                for _ in range(self.rnd.randint(1, 3)):
                    self.step(cur)
                conn.commit()
                self.commits += 1
            except Exception:  # server went away: reconnect; the outcome of that commit does not matter
                conn = None
                time.sleep(0.2)
            time.sleep(self.pause)
