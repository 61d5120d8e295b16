"""The local stack (deploy/stack.py): up, status, produce/consume, ClickHouse query, down, failures.

Uses only ports 29081, 29092-29093, 29000, 29123 and 29333-29340 (object store) so it can run next
to other engineers' tests.
"""

from __future__ import annotations

import importlib.util
import os
import socket
import sys
import textwrap
import time
import uuid

import pytest

from deploy.settings import Settings
from deploy.stack import Stack, StackError

pytestmark = pytest.mark.integration  # starts the stack's servers

BROKER = "127.0.0.1:29092"
REGISTRY = "http://127.0.0.1:29081"
CLICKHOUSE = "clickhouse://default:@127.0.0.1:29000/default"
CLICKHOUSE_HTTP = 29123
BUSY_PORT = 29093

_STANDIN = textwrap.dedent('''
    """Stand-in for `python -m schemas.registry` (Confluent-style GET /subjects)."""
    import argparse, json
    from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

    ap = argparse.ArgumentParser()
    ap.add_argument("--host"); ap.add_argument("--port", type=int); ap.add_argument("--data-dir")
    args = ap.parse_args()

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self):
            body = {"/subjects": [], "/v1/metadata/version": {"version": "stand-in"}}.get(self.path)
            self.send_response(200 if body is not None else 404)
            self.send_header("Content-Type", "application/json")
            self.end_headers()
            self.wfile.write(json.dumps(body).encode())

        def log_message(self, *a):
            pass

    ThreadingHTTPServer((args.host, args.port), Handler).serve_forever()
''')


def _registry_command(tmp_dir) -> list[str] | None:
    """The real registry when `python -m schemas.registry` is runnable, else a stand-in."""
    if not os.environ.get("HUILIU_TEST_REGISTRY_STANDIN"):
        try:
            if importlib.util.find_spec("schemas.registry.__main__") is not None:
                return None
        except ImportError:
            pass
    script = tmp_dir / "registry_standin.py"
    script.write_text(_STANDIN)
    return [sys.executable, str(script), "--host", "{host}", "--port", "{port}", "--data-dir", "{data_dir}"]


@pytest.fixture(scope="module")
def stack(tmp_path_factory):
    state = tmp_path_factory.mktemp("stack")
    settings = Settings(
        state_dir=state,
        kafka_bootstrap=BROKER,
        schema_registry_url=REGISTRY,
        clickhouse_url=CLICKHOUSE,
        clickhouse_http_port=CLICKHOUSE_HTTP,
    )
    st = Stack(settings, ready_timeout=60, stop_timeout=10, registry_command=_registry_command(state))
    try:
        st.up(progress=False)
        yield st
    finally:
        st.down()


def _by_name(statuses):
    return {s.name: s for s in statuses}


def test_up_then_status_reports_components_up(stack):
    status = _by_name(stack.status())
    for name in ("broker", "registry", "clickhouse"):
        assert status[name].up, status[name]
        assert status[name].version, status[name]
    assert status["broker"].version.startswith("tansu")
    assert status["clickhouse"].version.startswith("18.")
    assert status["broker"].address == BROKER
    # the external services are reported, up or not
    assert {"postgres", "redis"} <= set(status)
    state = stack.settings.state_dir
    for name in ("broker", "registry", "clickhouse"):
        assert (state / "run" / f"{name}.pid").exists()
        assert (state / "logs" / f"{name}.log").exists()
        assert (state / "data" / name).is_dir()
    assert (state / "data" / "clickhouse" / "config.xml").exists()


def test_up_is_idempotent(stack):
    pids = {n: stack.component(n).read_pid() for n in ("broker", "registry", "clickhouse")}
    results = stack.up(progress=False)
    assert all(r.up and r.detail == "already up" for r in results)
    assert pids == {n: stack.component(n).read_pid() for n in pids}


def _produce(topic: str, messages: list[tuple[bytes, bytes]]) -> None:
    from confluent_kafka import Producer
    from confluent_kafka.admin import AdminClient, NewTopic

    admin = AdminClient({"bootstrap.servers": BROKER})
    futures = admin.create_topics([NewTopic(topic, num_partitions=1, replication_factor=1)])
    futures[topic].result(timeout=10)
    producer = Producer({"bootstrap.servers": BROKER})
    for key, value in messages:
        producer.produce(topic, key=key, value=value)
    assert producer.flush(10) == 0


def _consume(topic: str, count: int, timeout: float = 30, done=None) -> list:
    """Messages of `topic` until `count` arrived (or `done(messages)` says so) or `timeout`."""
    from confluent_kafka import Consumer

    done = done or (lambda got: len(got) >= count)

    consumer = Consumer(
        {
            "bootstrap.servers": BROKER,
            "group.id": f"g-{topic}",
            "auto.offset.reset": "earliest",
            "enable.auto.commit": False,
            # tansu holds a group join for about the session timeout (default 45 s): keep it short
            "session.timeout.ms": 6000,
            "heartbeat.interval.ms": 500,
        }
    )
    got = []
    try:
        consumer.subscribe([topic])
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline and not done(got):
            msg = consumer.poll(1.0)
            if msg is not None and msg.error() is None:
                got.append(msg)
    finally:
        consumer.close()
    return got


def test_produce_and_consume_through_broker(stack):
    topic = f"stack-test-{uuid.uuid4().hex[:8]}"
    _produce(topic, [(b"k", b"hello huiliu")])
    got = _consume(topic, 1)
    assert len(got) == 1, "no message consumed within 30s"
    assert got[0].value() == b"hello huiliu"
    assert got[0].key() == b"k"


def test_the_broker_is_durable_by_default_and_keeps_events_across_a_restart(stack):
    assert "durable" in _by_name(stack.status())["broker"].detail
    topic = f"stack-durable-{uuid.uuid4().hex[:8]}"
    sent = [(str(i).encode(), f"event {i}".encode()) for i in range(2000)]
    _produce(topic, sent)
    outcome = stack.down()  # the whole stack, object store included, as a machine restart would
    assert set(outcome) == {"objectstore", "broker", "registry", "clickhouse"}
    stack.up(progress=False)
    got = _consume(topic, len(sent), timeout=60)
    assert [(m.key(), m.value()) for m in got] == sent


def test_acknowledged_events_survive_broker_kills_mid_stream(stack):
    """kill -9 of the broker while a source's producer streams: every chunk `flush_acked()` returned
    for is in the topic afterwards (tansu's idempotence lost such chunks: deploy.kafka.idempotence_for)."""
    import signal
    import threading

    from deploy.kafka import AckedProducer, ensure_topics

    topic = f"stack-kill-{uuid.uuid4().hex[:8]}"
    ensure_topics(BROKER, [topic])
    producer = AckedProducer(BROKER)
    assert producer.idempotent is False, "against tansu the producers must not use its idempotence"
    acked: list[int] = []
    stop = threading.Event()

    def stream() -> None:
        chunk = 0
        while not stop.is_set():
            values = [f"{chunk}:{i}".encode() for i in range(500)]
            producer.produce_many(topic, values)
            producer.flush_acked(120)
            acked.append(chunk)
            chunk += 1
            stop.wait(0.05)  # a source's pace, so the topic stays small enough to read back

    thread = threading.Thread(target=stream, daemon=True)
    thread.start()
    for _ in range(2):
        time.sleep(2.5)
        os.kill(stack.component("broker").read_pid(), signal.SIGKILL)
        time.sleep(0.3)
        stack.up(progress=False, only=["broker"])
    time.sleep(2)
    stop.set()
    thread.join(150)
    assert len(acked) > 4, "the stream must run across both kills"
    # Read until every acknowledged value came, not a count: without idempotence a batch whose
    # ack the kill cut off is sent again, so duplicates would reach the count before the last chunks.
    missing = {f"{c}:{i}".encode() for c in acked for i in range(500)}
    read = [0]

    def every_acknowledged_value_came(msgs: list) -> bool:
        missing.difference_update(m.value() for m in msgs[read[0] :])
        read[0] = len(msgs)
        return not missing

    got = {m.value() for m in _consume(topic, 0, timeout=120, done=every_acknowledged_value_came)}
    lost = [c for c in acked if any(f"{c}:{i}".encode() not in got for i in range(500))]
    assert not lost, f"acknowledged chunks missing after the kills: {lost[:10]}"


def test_memory_storage_is_only_used_when_asked_and_says_so(tmp_path):
    settings = Settings(state_dir=tmp_path, kafka_bootstrap="127.0.0.1:29192", broker_storage="memory")
    memory = Stack(settings)
    assert "objectstore" not in [c.name for c in memory._managed(None)]
    assert "NOT durable" in memory.component("broker").status().detail


def test_clickhouse_query(stack):
    from clickhouse_driver import Client

    client = Client(host="127.0.0.1", port=29000, user="default", password="")
    try:
        client.execute("DROP TABLE IF EXISTS default.stack_test")
        client.execute("CREATE TABLE default.stack_test (id UInt32, name String) ENGINE = MergeTree ORDER BY id")
        client.execute("INSERT INTO default.stack_test (id, name) VALUES", [(1, "a"), (2, "b")])
        assert client.execute("SELECT count(), sum(id) FROM default.stack_test") == [(2, 3)]
        client.execute("DROP TABLE default.stack_test")
    finally:
        client.disconnect()


def test_status_cli_prints_table(stack, monkeypatch):
    from typer.testing import CliRunner

    import deploy.stack_cli as cli

    monkeypatch.setattr(cli, "get_settings", lambda: stack.settings)
    result = CliRunner().invoke(cli.stack_app, ["status"], env={"COLUMNS": "200"})
    assert result.exit_code == 0, result.output
    for name in ("broker", "registry", "clickhouse", "postgres", "redis"):
        assert name in result.output


def test_down_stops_everything(stack):
    pids = [stack.component(n).read_pid() for n in ("objectstore", "broker", "registry", "clickhouse")]
    outcome = stack.down()
    assert set(outcome) == {"objectstore", "broker", "registry", "clickhouse"}
    status = _by_name(stack.status())
    for name in ("broker", "registry", "clickhouse"):
        assert not status[name].up, status[name]
        assert not (stack.settings.state_dir / "run" / f"{name}.pid").exists()
    for pid in pids:
        assert not os.path.exists(f"/proc/{pid}") or open(f"/proc/{pid}/stat").read().split(")")[1].split()[0] == "Z"
    assert set(stack.down().values()) == {"not running"}


def test_component_that_cannot_start_names_itself_and_its_log(tmp_path):
    busy = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    busy.bind(("127.0.0.1", BUSY_PORT))
    busy.listen(1)
    try:
        settings = Settings(state_dir=tmp_path, kafka_bootstrap=f"127.0.0.1:{BUSY_PORT}", broker_storage="memory")
        stack = Stack(settings, ready_timeout=15)
        started = time.monotonic()
        with pytest.raises(StackError) as err:
            stack.up(progress=False, only=["broker"])
        message = str(err.value)
        assert "broker" in message
        assert str(tmp_path / "logs" / "broker.log") in message
        assert f"port {BUSY_PORT}" in message
        assert time.monotonic() - started < 15
        assert not (tmp_path / "run" / "broker.pid").exists()
    finally:
        busy.close()


def test_component_that_never_answers_is_stopped_after_timeout(tmp_path):
    settings = Settings(state_dir=tmp_path, schema_registry_url="http://127.0.0.1:29094")
    hang = [sys.executable, "-c", "import time; time.sleep(120)", "{port}"]
    stack = Stack(settings, ready_timeout=3, registry_command=hang)
    with pytest.raises(StackError) as err:
        stack.up(progress=False, only=["registry"])
    message = str(err.value)
    assert "registry failed to start: no answer within 3s" in message
    assert str(tmp_path / "logs" / "registry.log") in message
    assert stack.component("registry").running_pid() is None
    assert not (tmp_path / "run" / "registry.pid").exists()
