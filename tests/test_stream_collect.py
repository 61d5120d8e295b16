"""Real-time collection (AGG-04): syslog parsing, TCP/UDP listeners with counted drops, log tail
through rename and copytruncate rotation, multi-line records, and resume across restarts.

Listeners bind 127.0.0.1:30270-30279 (below Linux's ephemeral range 32768-60999, where another test's client socket could hold one); the Kafka tests use the session's real broker.
"""

from __future__ import annotations

import os
import shutil
import socket
import struct
import time
import uuid

import pytest

from connectors.runtime import SourceRuntime
from connectors.streams.socket_source import SocketSourceConfig, SocketSourceTask
from connectors.streams.syslog import parse
from connectors.streams.tail import TailSourceConfig, TailSourceTask
from schemas.serde import WireCodec
from tests.sources import consume_settled


def test_syslog_rfc5424_rfc3164_and_rejects():
    m = parse('<165>1 2003-08-24T05:14:15.000003-07:00 192.0.2.1 myproc 8710 - [a@1 k="v\\]x"][b@2] %% It\'s time')
    assert (m["facility"], m["severity"], m["hostname"], m["app_name"], m["procid"], m["msgid"]) == (
        20,
        5,
        "192.0.2.1",
        "myproc",
        "8710",
        None,
    )
    assert m["structured_data"] == '[a@1 k="v\\]x"][b@2]' and m["message"] == "%% It's time"
    m = parse("<34>Oct 11 22:14:15 mymachine su: 'su root' failed for lonvick on /dev/pts/8")
    assert (m["format"], m["hostname"], m["app_name"], m["message"][:9]) == ("rfc3164", "mymachine", "su", "'su root'")
    assert parse("<13>just text")["format"] == "rfc3164-noheader"
    for bad in ("no pri", "<999>x", "<1>1 notatime host app - - - msg"):
        with pytest.raises(ValueError):
            parse(bad)


def wait_until(cond, timeout=10.0):
    deadline = time.time() + timeout
    while time.time() < deadline:
        if cond():
            return True
        time.sleep(0.05)
    return False


def test_tcp_syslog_into_kafka_with_quarantine(stack_settings):
    table = f"s{uuid.uuid4().hex[:8]}"
    task = SocketSourceTask(
        SocketSourceConfig(
            name=f"sock-{table}", system="net_t", table=table, host="127.0.0.1", port=30270, parse="syslog"
        )
    )
    rt = SourceRuntime(
        task,
        bootstrap=stack_settings.kafka_bootstrap,
        codec=WireCodec(stack_settings.schema_registry_url),
        control_db_url=stack_settings.resolved_control_db_url,
    )
    rt.start()
    try:
        with socket.create_connection(("127.0.0.1", 30270)) as s:
            s.sendall(
                b"<13>Feb  5 17:32:18 host1 app[1]: one\n<14>1 2024-01-01T00:00:00Z h2 app - - - two\r\n"
                b"garbage line\n<15>Feb  5 17:32:19 host1 app: three"
            )
        assert wait_until(lambda: task.stats["received"] == 4)
        assert rt.drain() == 4
    finally:
        task.close()
    topic = f"huiliu.net_t.default.{table}"
    got = consume_settled(stack_settings, topic, 3)
    assert [e["after"]["message"] for e in got] == ["one", "two", "three"]
    assert got[0]["after"]["peer"].startswith("127.0.0.1:") and got[0]["op"] == "c"
    seqs = [e["source"]["sequence"] for e in got]
    assert seqs == sorted(set(seqs))
    bad = consume_settled(stack_settings, topic + ".quarantine", 1)
    assert "not syslog" in bad[0]["reason"] and "garbage line" in bad[0]["original_json"]


def test_length_prefixed_and_octet_framing_and_oversize_is_counted():
    for port, framing, encode in (
        (30271, "length", lambda b: struct.pack(">I", len(b)) + b),
        (30273, "octet", lambda b: b"%d " % len(b) + b),
    ):
        task = SocketSourceTask(
            SocketSourceConfig(name="f", system="s", host="127.0.0.1", port=port, framing=framing, max_frame_bytes=100)
        )
        task.start({})
        try:
            with socket.create_connection(("127.0.0.1", port)) as s:
                payload = encode("多行\nmessage".encode()) + encode(b"x" * 50)
                s.sendall(payload[:7])
                time.sleep(0.1)
                s.sendall(payload[7:] + encode(b"y" * 500))
            assert wait_until(lambda task=task: task.stats["dropped_oversize"] == 1)
            events = task.poll().events
            assert [e.after["message"] for e in events] == ["多行\nmessage", "x" * 50]
            assert task.take_counters() == {"dropped_buffer_full": 0, "dropped_oversize": 1}
            assert task.take_counters()["dropped_oversize"] == 0  # deltas, reported once
        finally:
            task.close()


def test_udp_full_buffer_drops_are_counted_never_silent():
    task = SocketSourceTask(
        SocketSourceConfig(name="u", system="s", protocol="udp", host="127.0.0.1", port=30272, buffer_size=5)
    )
    task.start({})
    try:
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
            for i in range(50):
                s.sendto(b"msg %d" % i, ("127.0.0.1", 30272))
        assert wait_until(lambda: task.stats["received"] + task.stats["dropped_buffer_full"] == 50)
        assert task.stats["received"] == 5 and task.stats["dropped_buffer_full"] == 45
        assert [e.after["message"] for e in task.poll().events] == [f"msg {i}" for i in range(5)]
    finally:
        task.close()


def tail_task(path, **kw) -> TailSourceTask:
    task = TailSourceTask(TailSourceConfig(name="t", system="s", paths=[str(path)], **kw))
    task.start({})
    return task


def messages(task) -> list[str]:
    return [e.after["message"] for e in task.poll().events]


def test_tail_follows_rename_rotation_and_copytruncate(tmp_path):
    log = tmp_path / "app.log"
    log.write_text("1\n2\n3\n")
    task = tail_task(log)
    assert messages(task) == ["1", "2", "3"]
    with open(log, "a") as f:
        f.write("4\n5")  # 5 is not finished yet
    assert messages(task) == ["4"]
    with open(log, "a") as f:
        f.write("-five\n")
    os.rename(log, tmp_path / "app.log.1")
    log.write_text("6\n")
    assert messages(task) == ["5-five", "6"]
    # copytruncate: the file keeps its inode but shrinks
    with open(log, "a") as f:
        f.write("7\n")
    assert messages(task) == ["7"]
    shutil.copy(log, tmp_path / "app.log.2")
    with open(log, "r+") as f:
        f.truncate(0)
    with open(log, "a") as f:
        f.write("8\n")
    assert messages(task) == ["8"]
    task.close()


def test_tail_multiline_records_by_start_pattern(tmp_path):
    log = tmp_path / "java.log"
    log.write_text("2024-01-01 ERROR boom\njava.lang.X: y\n\tat a.b(C.java:1)\n2024-01-01 INFO ok\n")
    task = tail_task(log, multiline_start=r"^\d{4}-\d\d-\d\d ", multiline_flush_seconds=60)
    events = task.poll().events
    assert [e.after["message"] for e in events] == ["2024-01-01 ERROR boom\njava.lang.X: y\n\tat a.b(C.java:1)"]
    assert task.poll().events == []  # the INFO record may still get continuation lines
    task.config.multiline_flush_seconds = 0
    assert [e.after["line"] for e in task.poll().events] == [4]
    task.close()


def test_tail_resumes_across_restart_and_rotation_while_down(stack_settings, tmp_path):
    table, name = f"l{uuid.uuid4().hex[:8]}", f"tail-{uuid.uuid4().hex[:6]}"
    log = tmp_path / "svc.log"

    def runtime():
        task = TailSourceTask(TailSourceConfig(name=name, system="logs_t", table=table, paths=[str(log)]))
        return task, SourceRuntime(
            task,
            bootstrap=stack_settings.kafka_bootstrap,
            codec=WireCodec(stack_settings.schema_registry_url),
            control_db_url=stack_settings.resolved_control_db_url,
        )

    log.write_text("".join(f"a{i}\n" for i in range(100)))
    task, rt = runtime()
    assert rt.drain() == 100
    task.close()
    with open(log, "a") as f:
        f.write("a100\na101\n")  # written to the old file before rotation, while the tailer is down
    os.rename(log, tmp_path / "svc.log.1")
    log.write_text("b0\nb1\n")
    task, rt = runtime()
    assert rt.drain() == 4
    task.close()
    got = consume_settled(stack_settings, f"huiliu.logs_t.default.{table}", 104)
    assert [e["after"]["message"] for e in got] == [f"a{i}" for i in range(102)] + ["b0", "b1"]
