"""HdfsSinkTask against a real single-node HDFS (NameNode + DataNode from deploy/hdfs)."""

from __future__ import annotations

import io
import os
import posixpath
import shutil
import threading
import time
from datetime import UTC

import fastavro
import pyarrow.parquet as pq
import pytest

from sinks.base import FatalSinkError, SinkError, SinkRecord
from sinks.hdfs import HdfsSinkSettings, HdfsSinkTask
from sinks.hdfs.store import INPROGRESS, parse_name

pytestmark = pytest.mark.hdfs

# 29880-29884 (the benchmark uses 29885-29889); a session beside another one's names its own five
PORT_BASE = int(os.environ.get("HUILIU_TEST_HDFS_PORT_BASE", "29880"))
DEAD_URL = f"http://127.0.0.1:{PORT_BASE - 1}"  # in our range, never listened on
DAY1_MS = 1_700_000_000_000  # 2023-11-14 (UTC)
DAY2_MS = DAY1_MS + 86_400_000  # 2023-11-15


@pytest.fixture(scope="session")
def cluster(tmp_path_factory):
    if shutil.which("java") is None:
        pytest.skip("java is not installed: the HDFS tests need a JVM for the NameNode/DataNode")
    from deploy.hdfs import jars
    from deploy.hdfs.cluster import HdfsCluster

    try:
        jars.ensure_jars()
    except jars.JarsUnavailable as exc:
        pytest.skip(f"Hadoop jars cannot be fetched: {exc}")
    c = HdfsCluster.from_port_base(tmp_path_factory.mktemp("hdfs"), PORT_BASE)
    c.start()
    yield c
    c.stop()


@pytest.fixture
def root(cluster, request):
    """A fresh root dir per test, so tests do not see each other's files."""
    return f"/t/{request.node.name.replace('[', '_').replace(']', '')}"


def make_task(cluster, root, **kw) -> HdfsSinkTask:
    return HdfsSinkTask(HdfsSinkSettings(url=cluster.webhdfs_url, root=root, **kw))


def event(topic, offset, table, op, row, ts_ms, partition=0):
    value = {
        "op": op,
        "before": row if op in ("u", "d") else None,
        "after": None if op == "d" else row,
        "ts_ms": ts_ms,
        "transaction": None,
        "source": {
            "system": "postgresql",
            "database": "shop",
            "schema": "public",
            "table": table,
            "connector": "pg",
            "position": {"lsn": 1000 + offset},
            "sequence": 1000 + offset,
            "snapshot": False,
        },
    }
    return SinkRecord(topic, partition, offset, {"id": row["id"]}, value)


def two_table_batch() -> list[SinkRecord]:
    recs, off = [], {"orders": 0, "customers": 0}
    for i in range(40):
        table = "orders" if i % 2 == 0 else "customers"
        ts = DAY1_MS if i < 20 else DAY2_MS
        op = "d" if i in (30, 31) else ("u" if i % 5 == 0 else "c")
        row = (
            {"id": i, "amount": i * 1.25, "status": f"s{i}", "paid": i % 3 == 0}
            if table == "orders"
            else {"id": i, "name": f"n{i}", "email": None if i % 4 == 1 else f"c{i}@x.io"}
        )
        recs.append(event(f"huiliu.shop.{table}", off[table], table, op, row, ts + i))
        off[table] += 1
    return recs


def expected_rows(recs: list[SinkRecord]) -> dict[str, list[dict]]:
    """Path (relative to root) -> rows, as the sink should write them."""
    out: dict[str, list[dict]] = {}
    for r in recs:
        table = r.value["source"]["table"]
        day = "2023-11-14" if r.value["ts_ms"] < DAY2_MS else "2023-11-15"
        row = dict(r.row)
        row.update(
            _op=r.op,
            _ts_ms=r.value["ts_ms"],
            _position=f'{{"lsn":{1000 + r.offset}}}',
            _sequence=1000 + r.offset,
            _partition=r.partition,
            _offset=r.offset,
        )
        out.setdefault(f"{table}/dt={day}", []).append(row)
    return out


def files(client, path) -> dict[str, list[str]]:
    """dir (relative to path) -> sorted file names, over the whole tree."""
    if client.status(path, strict=False) is None:
        return {}
    return {posixpath.relpath(d, path): sorted(fs) for d, _, fs in client.walk(path) if fs}


def read_avro(client, path) -> list[dict]:
    with client.read(path) as r:
        return list(fastavro.reader(io.BytesIO(r.read())))


def read_rows(client, root, fmt="avro") -> dict[str, list[dict]]:
    out: dict[str, list[dict]] = {}
    for d, names in files(client, root).items():
        if d.startswith("_tmp"):
            continue
        for n in names:
            p = f"{root}/{d}/{n}"
            if fmt == "avro":
                rows = read_avro(client, p)
            else:
                with client.read(p) as r:
                    rows = pq.read_table(io.BytesIO(r.read())).to_pylist()
            out.setdefault(d, []).extend(rows)
    return out


@pytest.mark.parametrize("fmt", ["avro", "parquet"])
def test_two_tables_two_dates_land_in_partitioned_files(cluster, root, fmt):
    recs = two_table_batch()
    task = make_task(cluster, root, format=fmt)
    task.put(recs)
    task.flush()
    c = task.store.client
    layout = files(c, root)
    assert set(layout) == {
        "orders/dt=2023-11-14",
        "orders/dt=2023-11-15",
        "customers/dt=2023-11-14",
        "customers/dt=2023-11-15",
    }
    assert all(len(v) == 1 and v[0].endswith("." + fmt) for v in layout.values())
    assert layout["orders/dt=2023-11-14"] == [f"huiliu.shop.orders+0+{0:020d}+{9:020d}.{fmt}"]
    assert read_rows(c, root, fmt) == expected_rows(recs)
    deletes = [r for rows in read_rows(c, root, fmt).values() for r in rows if r["_op"] == "d"]
    assert {r["id"] for r in deletes} == {30, 31}  # deletes are rows carrying the before image
    task.close()


def test_no_temp_file_visible_after_flush(cluster, root):
    task = make_task(cluster, root)
    task.put(two_table_batch())
    task.flush()
    assert not any(n.endswith(INPROGRESS) for ns in files(task.store.client, root).values() for n in ns)
    assert files(task.store.client, f"{root}/_tmp") == {}


def test_replay_after_restart_commits_nothing_twice(cluster, root):
    recs = two_table_batch()
    first = make_task(cluster, root)
    first.put(recs)
    first.flush()
    before = files(first.store.client, root)
    # A crash after flush but before the Kafka offset commit: a new task gets the same offsets.
    again = make_task(cluster, root)
    again.put(recs)
    again.flush()
    assert files(again.store.client, root) == before
    assert again.files_committed == 0
    assert read_rows(again.store.client, root) == expected_rows(recs)


def test_crash_between_temp_write_and_rename(cluster, root, monkeypatch):
    recs = two_table_batch()
    crashing = make_task(cluster, root)

    class Crash(BaseException):
        """Like a kill: not an Exception, so nothing on the way catches it."""

    def crash(*_a, **_k):
        raise Crash("simulated crash before rename")

    monkeypatch.setattr(crashing.store, "commit", crash)
    crashing.put(recs)
    with pytest.raises(Crash):
        crashing.flush()
    c = crashing.store.client
    assert any(n.endswith(INPROGRESS) for ns in files(c, f"{root}/_tmp").values() for n in ns)
    assert [d for d in files(c, root) if not d.startswith("_tmp")] == []  # readers saw nothing

    replay = make_task(cluster, root)
    replay.put(recs)
    replay.flush()
    layout = files(c, root)
    assert len(layout) == 4 and all(len(v) == 1 for v in layout.values())  # no _tmp entries left
    assert read_rows(c, root) == expected_rows(recs)


def test_commit_onto_existing_name_is_skipped(cluster, root):
    """Two attempts at the same offsets (e.g. a zombie task): the second rename is a no-op."""
    recs = two_table_batch()
    a, b = make_task(cluster, root), make_task(cluster, root)
    a.put(recs)
    b.put(recs)  # b read the directories before a committed anything
    a.flush()
    b.flush()
    assert a.files_committed == 4 and b.files_committed == 0
    layout = files(a.store.client, root)
    assert len(layout) == 4 and all(len(v) == 1 for v in layout.values())
    assert read_rows(a.store.client, root) == expected_rows(recs)


def test_retried_put_does_not_duplicate_rows(cluster, root):
    recs = two_table_batch()
    task = make_task(cluster, root)
    task.put(recs[:25])
    task.put(recs)  # the runtime retries the whole batch after an error
    task.flush()
    assert read_rows(task.store.client, root) == expected_rows(recs)


def test_roll_by_size_gives_contiguous_offset_ranges(cluster, root):
    recs = [event("huiliu.shop.logs", i, "logs", "c", {"id": i, "text": "x" * 200}, DAY1_MS) for i in range(3000)]
    task = make_task(cluster, root, roll_bytes=100_000)
    task.put(recs)
    task.flush()
    names = files(task.store.client, root)["logs/dt=2023-11-14"]
    assert len(names) > 3
    ranges = sorted((int(n.split("+")[2]), int(n.split("+")[3].split(".")[0])) for n in names)
    assert ranges[0][0] == 0 and ranges[-1][1] == 2999
    assert all(b[0] == a[1] + 1 for a, b in zip(ranges, ranges[1:]))
    rows = read_rows(task.store.client, root)["logs/dt=2023-11-14"]
    assert sorted(r["_offset"] for r in rows) == list(range(3000))


def test_roll_by_time_closes_files_between_puts(cluster, root):
    recs = [event("huiliu.shop.logs", i, "logs", "c", {"id": i}, DAY1_MS) for i in range(6)]
    task = make_task(cluster, root, roll_seconds=0.001)
    task.put(recs[:3])
    time.sleep(0.01)
    task.put(recs[3:])
    task.flush()
    names = files(task.store.client, root)["logs/dt=2023-11-14"]
    assert [n.split("+", 2)[2] for n in names] == [f"{0:020d}+{2:020d}.avro", f"{3:020d}+{5:020d}.avro"]


def test_date_field_overrides_event_time(cluster, root):
    recs = [
        event("huiliu.shop.orders", i, "orders", "c", {"id": i, "created": f"2024-02-0{i + 1}T10:00:00"}, DAY1_MS)
        for i in range(3)
    ]
    task = make_task(cluster, root, date_field="created")
    task.put(recs)
    task.flush()
    assert sorted(files(task.store.client, root)) == [f"orders/dt=2024-02-0{i}" for i in (1, 2, 3)]


@pytest.mark.parametrize("fmt", ["avro", "parquet"])
def test_value_types_round_trip(cluster, root, fmt):
    from datetime import date, datetime
    from decimal import Decimal

    row = {
        "id": 1,
        "d": date(2024, 3, 1),
        "at": datetime(2024, 3, 1, 12, 30, 1, 5, tzinfo=UTC),
        "price": Decimal("12.50"),
        "tags": {"a": [1, 2]},
        "raw": b"\x00\x01",
        "nothing": None,
        "n": 3,
    }
    task = make_task(cluster, root, format=fmt)
    task.put(
        [
            event("huiliu.shop.types", 0, "types", "c", row, DAY1_MS),
            event("huiliu.shop.types", 1, "types", "c", {**row, "id": 2, "n": 2.5}, DAY1_MS),
        ]
    )
    task.flush()
    got = read_rows(task.store.client, root, fmt)["types/dt=2023-11-14"]
    assert [g["id"] for g in got] == [1, 2]
    g = got[0]
    assert g["d"] == date(2024, 3, 1) and g["price"] == "12.50" and g["raw"] == b"\x00\x01"
    assert g["tags"] == '{"a": [1, 2]}' and g["nothing"] is None
    assert [x["n"] for x in got] == [3.0, 2.5]  # int and float in one column -> double
    assert g["at"].replace(tzinfo=UTC) == row["at"]  # Avro keeps UTC wall time


def test_unencodable_rows_are_fatal(cluster, root):
    task = make_task(cluster, root)
    with pytest.raises(FatalSinkError, match="big"):  # at put or at flush: the runtime stops either way
        task.put([event("huiliu.shop.big", 0, "big", "c", {"id": 2**70}, DAY1_MS)])
        task.flush()


def test_webhdfs_unreachable_raises_sink_error(cluster, root):
    task = HdfsSinkTask(HdfsSinkSettings(url=DEAD_URL, root=root, timeout_s=5))
    with pytest.raises(SinkError):
        task.put(two_table_batch())


def test_namenode_down_at_flush_then_retry_succeeds(cluster, root):
    recs = two_table_batch()
    task = make_task(cluster, root)
    task.put(recs)
    cluster.stop()
    try:
        with pytest.raises(SinkError):
            task.flush()
    finally:
        cluster.start()
    task.flush()  # the runtime's retry
    assert read_rows(task.store.client, root) == expected_rows(recs)
    assert files(task.store.client, f"{root}/_tmp") == {}


def test_sink_runner_hands_records_decoded_from_a_topic_in_offset_order(cluster, root, stack_settings):
    """The record path of SinkRunner (frames -> records): values, keys, deletes and order intact."""
    import uuid
    from decimal import Decimal

    import sqlalchemy.types as sa

    from connectors.base import CapturedTable
    from schemas.serde import WireCodec
    from schemas.sqltypes import ColumnSpec
    from tests.sources import delete, upsert

    t = CapturedTable(
        "shop",
        f"ledger_{uuid.uuid4().hex[:6]}",
        (
            ColumnSpec("id", sa.BigInteger(), False, True),
            ColumnSpec("name", sa.String(20)),
            ColumnSpec("amount", sa.Numeric(12, 2)),
        ),
        "shop",
        "public",
    )
    events = [upsert(t, {"id": i, "name": f"n{i}", "amount": Decimal(i).scaleb(-2)}, i) for i in range(1, 31)]
    events += [
        upsert(t, {"id": 5, "name": "five", "amount": Decimal("9.99")}, 40, "u"),
        delete(t, {"id": 7, "name": "n7", "amount": Decimal("0.07")}, 41),
    ]
    codec = WireCodec(stack_settings.schema_registry_url)
    runtime = _list_source(stack_settings, codec, f"src-{t.table}", events, 7)
    runtime.drain()
    task = make_task(cluster, root, roll_seconds=3600)
    runner = _sink_runner(stack_settings, codec, task, [runtime.topic_of(t)], f"hdfs-{t.table}")
    _run_until(runner, lambda: runner.status.written >= len(events))
    rows = sorted((r for rs in read_rows(task.store.client, root).values() for r in rs), key=lambda r: r["_offset"])
    assert [(r["id"], r["_op"]) for r in rows] == [(i, "c") for i in range(1, 31)] + [(5, "u"), (7, "d")]
    assert rows[30]["name"] == "five" and rows[30]["amount"] == "9.99"  # decimals are kept as exact text
    assert rows[31]["name"] == "n7"  # a delete carries its before image
    assert [r["_offset"] for r in rows] == list(range(len(events)))


def _avro_file_schemas(client, root) -> dict[str, list[str]]:
    """File name -> the field names of the Avro schema in its header (the writer schema of that file)."""
    out = {}
    for d, names in files(client, root).items():
        if d.startswith("_tmp"):
            continue
        for n in names:
            with client.read(f"{root}/{d}/{n}") as r:
                out[n] = [f["name"] for f in fastavro.reader(io.BytesIO(r.read())).writer_schema["fields"]]
    return out


def test_source_schema_change_new_files_carry_the_added_column(cluster, root, stack_settings):
    """Issue 15: a captured table gains a column, through SourceRuntime -> topic -> SinkRunner.
    The file written before keeps its schema; the batch spanning the change is one file whose schema
    is the union (the new column null in the older rows); every event is there once."""
    import threading
    import uuid

    import sqlalchemy.types as sa

    from connectors.base import CapturedTable
    from schemas.serde import WireCodec
    from schemas.sqltypes import ColumnSpec
    from sinks.runtime import SinkRunner
    from tests.sources import upsert

    name = f"evolve_{uuid.uuid4().hex[:6]}"
    base = (ColumnSpec("id", sa.BigInteger(), False, True), ColumnSpec("name", sa.String(20)))
    v1 = CapturedTable("shop", name, base, "shop", "public")
    v2 = CapturedTable("shop", name, (*base, ColumnSpec("email", sa.String(40))), "shop", "public")
    codec = WireCodec(stack_settings.schema_registry_url)
    events = [upsert(v1, {"id": i, "name": f"n{i}"}, i) for i in range(1, 6)]  # before the change
    source = _list_source(stack_settings, codec, f"src-{name}", events, 100)
    source.drain()
    task = make_task(cluster, root, roll_seconds=3600)
    client = task.store.client
    runner = SinkRunner(
        stack_settings.kafka_bootstrap,
        f"hdfs-{name}",
        [source.topic_of(v1)],
        codec,
        task,
        batch_size=500,
        batch_seconds=1.0,
        consumer_extra={"session.timeout.ms": 6000},
    )
    stop = threading.Event()
    thread = threading.Thread(target=lambda: runner.run(stop), daemon=True)
    thread.start()

    def written(n: int) -> None:
        deadline = time.time() + 60
        while runner.status.written < n and time.time() < deadline:
            time.sleep(0.1)

    try:
        written(5)
        first = _avro_file_schemas(client, root)
        first_fields = ["id", "name", "_op", "_ts_ms", "_position", "_sequence", "_partition", "_offset"]
        assert list(first.values()) == [first_fields]
        # published together (one produce, one fetch), so they reach the sink as one batch
        events += [upsert(v1, {"id": i, "name": f"n{i}"}, i) for i in range(6, 9)]
        events += [
            upsert(v2, {"id": i, "name": f"n{i}", "email": None if i == 10 else f"p{i}@x.cn"}, i) for i in range(9, 13)
        ]
        source.drain()
        written(12)
    finally:
        stop.set()
        thread.join(30)

    schemas = _avro_file_schemas(client, root)
    assert {n: schemas[n] for n in first} == first  # the file before the change keeps its schema
    later = sorted((n for n in schemas if n not in first), key=lambda n: parse_name(n)[2])
    assert [parse_name(n)[2:4] for n in later] == [(5, 11)]  # the batch spanning the change is one file
    assert sorted(schemas[later[0]]) == sorted([*first_fields, "email"])
    rows = sorted((r for rs in read_rows(client, root).values() for r in rs), key=lambda r: r["_offset"])
    assert [r["id"] for r in rows] == list(range(1, 13))  # nothing lost, nothing twice
    assert [r.get("email") for r in rows[:8]] == [None] * 8  # no column before; null in the union file
    assert [r["email"] for r in rows[8:]] == ["p9@x.cn", None, "p11@x.cn", "p12@x.cn"]


def test_copies_of_written_events_are_skipped_within_the_window(cluster, root):
    """A copy (same key and source sequence, later offset) is skipped while its original is among the
    last `dedupe_offsets` offsets; one further behind is written again: the window is bounded."""
    recs = [event("huiliu.shop.people", i, "people", "c", {"id": i, "v": f"v{i}"}, DAY1_MS) for i in range(30)]

    def copy(original: SinkRecord, offset: int) -> SinkRecord:
        return SinkRecord(original.topic, 0, offset, original.key, original.value)

    near = [copy(recs[i], 30 + n) for n, i in enumerate(range(25, 30))]  # 5 offsets behind: skipped
    far = [copy(recs[0], 35)]  # 35 offsets behind a window of 20: written again
    again = [copy(recs[27], 36), copy(recs[27], 37)]  # two copies in one put: both skipped
    task = make_task(cluster, root, dedupe_offsets=20)
    task.put(recs)
    task.put(near + far + again)
    task.flush()
    rows = read_rows(task.store.client, root)["people/dt=2023-11-14"]
    assert [r["_offset"] for r in rows] == [*range(30), 35]
    assert task.duplicates_skipped == 7


def test_a_replay_through_a_topic_is_written_once_also_after_a_sink_restart(cluster, root, stack_settings):
    """SourceRuntime -> topic -> SinkRunner: the source replays events it had published (same key and
    sequence, later offsets), before and after the sink restarted; the files hold each event once,
    and a new version of a key is still written."""
    import uuid

    import sqlalchemy.types as sa

    from connectors.base import CapturedTable
    from schemas.serde import WireCodec
    from schemas.sqltypes import ColumnSpec
    from tests.sources import upsert

    t = CapturedTable(
        "shop",
        f"replayed_{uuid.uuid4().hex[:6]}",
        (ColumnSpec("id", sa.BigInteger(), False, True), ColumnSpec("name", sa.String(20))),
        "shop",
        "public",
    )
    originals = [upsert(t, {"id": i, "name": f"n{i}"}, 100 + i) for i in range(1, 31)]
    newer = upsert(t, {"id": 5, "name": "five"}, 200, "u")
    events = [*originals, *originals[20:], newer]  # offsets 30-39: a replay of 21-30
    codec = WireCodec(stack_settings.schema_registry_url)
    source = _list_source(stack_settings, codec, f"src-{t.table}", events, 7)
    source.drain()

    def sink_until(written: int) -> HdfsSinkTask:
        task = make_task(cluster, root, roll_seconds=3600)
        runner = _sink_runner(stack_settings, codec, task, [source.topic_of(t)], f"hdfs-{t.table}")
        _run_until(runner, lambda: runner.status.written >= written)
        return task

    first = sink_until(len(events))
    assert first.duplicates_skipped == 10
    # The sink restarted; the source replays again: copies whose originals are in committed files
    # (the new task's window is seeded from them), a copy of the newer version, and one new event.
    events += [*originals[24:], newer, upsert(t, {"id": 31, "name": "n31"}, 131)]
    source.drain()
    second = sink_until(len(events) - 41)  # the restarted sink reads from its committed offset
    assert second.duplicates_skipped == 7
    rows = [r for rs in read_rows(second.store.client, root).values() for r in rs]
    pairs = [(r["id"], r["_sequence"]) for r in rows]
    assert sorted(pairs) == sorted({(e.after["id"], e.sequence) for e in events})  # each event once
    assert len(pairs) == 32


def _list_source(settings, codec, name: str, events: list, batch: int):
    """A real SourceRuntime publishing `events` (the list may grow: `drain()` publishes what is new)."""
    from connectors.runtime import SourceRuntime
    from tests.sources import ListSourceTask

    return SourceRuntime(
        ListSourceTask(name, events, batch),
        bootstrap=settings.kafka_bootstrap,
        codec=codec,
        control_db_url=settings.resolved_control_db_url,
    )


def _sink_runner(settings, codec, task, topics: list[str], group: str):
    from sinks.runtime import SinkRunner

    return SinkRunner(
        settings.kafka_bootstrap,
        group,
        topics,
        codec,
        task,
        batch_size=500,
        batch_seconds=0.5,
        consumer_extra={"session.timeout.ms": 6000},
    )


def _run_until(runner, done, timeout: float = 60.0) -> None:
    """Runs the SinkRunner on a thread until `done()` (or the timeout), then stops it (offsets committed)."""
    import threading

    stop = threading.Event()
    thread = threading.Thread(target=lambda: runner.run(stop), daemon=True)
    thread.start()
    try:
        deadline = time.time() + timeout
        while not done() and time.time() < deadline:
            time.sleep(0.1)
    finally:
        stop.set()
        thread.join(30)


def test_a_batch_retried_after_an_upload_failed_mid_put_is_written_whole_and_once(cluster, root, monkeypatch):
    """Files roll within one put; the first uploads fail, so put or flush raises partway, and the
    runtime retries the batch (put, then flush) on the same task: every row lands exactly once, also
    when the partition's offsets alternate between two tables' directories."""
    recs = [
        event("huiliu.shop.logs", i, "logs" if i % 2 else "audit", "c", {"id": i, "text": "x" * 200}, DAY1_MS)
        for i in range(3000)
    ]
    task = make_task(cluster, root, roll_bytes=20_000)
    real_write, failures = task.store.write_temp, [0]

    def flaky_write(path, data):
        if failures[0] < 3:
            failures[0] += 1
            raise SinkError("simulated DataNode failure")
        return real_write(path, data)

    monkeypatch.setattr(task.store, "write_temp", flaky_write)
    raised_in_put = False
    for _attempt in range(10):  # as SinkRunner's writer retries a batch
        try:
            task.put(recs)
        except SinkError:
            raised_in_put = True
            continue
        try:
            task.flush()
            break
        except SinkError:
            continue
    assert raised_in_put, "the failure must reach put: a file rolled while the batch was being buffered"
    rows = [r for rs in read_rows(task.store.client, root).values() for r in rs]
    assert sorted(r["_offset"] for r in rows) == list(range(3000))


def test_flush_started_waits_for_its_own_files_and_not_for_later_ones(cluster, root, monkeypatch):
    """SinkRunner puts the next batch while the last one's files upload (flush_started): a batch's
    wait answers False while its file is not renamed into place, True once it is, also while the
    next batch's file is still being uploaded."""
    task = make_task(cluster, root)
    real_write, gates = task.store.write_temp, [threading.Event(), threading.Event()]
    uploads: list[str] = []

    def held_write(path, data):
        uploads.append(path)
        assert gates[len(uploads) - 1].wait(60)
        return real_write(path, data)

    monkeypatch.setattr(task.store, "write_temp", held_write)
    first, second = two_table_batch()[:10:2], two_table_batch()[20:30:2]  # orders, one day each

    def committed() -> list[str]:
        return [n for d, ns in files(task.store.client, root).items() if not d.startswith("_tmp") for n in ns]

    try:
        task.put(first)
        first_done = task.flush_started()
        assert first_done(0.3) is False and committed() == []
        task.put(second)  # the first batch's upload still held
        second_done = task.flush_started()
        gates[0].set()
        assert first_done(None) is True
        assert [parse_name(n)[2:] for n in committed()] == [(0, 4)]
        assert second_done(0.3) is False
        gates[1].set()
        assert second_done(None) is True
        assert sorted(parse_name(n)[2:] for n in committed()) == [(0, 4), (10, 14)]
    finally:
        for gate in gates:
            gate.set()
    assert len(uploads) == 2 and task.files_committed == 2


def test_a_restarted_sink_seeds_its_window_from_every_recent_file(cluster, root):
    """After a restart the window is read back from each committed file within it (side by side):
    copies of events from any of them are skipped, one from a file behind the window is written."""
    first = make_task(cluster, root, dedupe_offsets=100)
    recs = [event("huiliu.shop.people", i, "people", "c", {"id": i, "v": f"v{i}"}, DAY1_MS) for i in range(120)]
    for n in range(12):  # twelve files of ten offsets each
        first.put(recs[n * 10 : n * 10 + 10])
        first.flush()
    first.close()

    def copy(original: SinkRecord, offset: int) -> SinkRecord:
        return SinkRecord(original.topic, 0, offset, original.key, original.value)

    copies = [copy(recs[i], 120 + n) for n, i in enumerate([25, 47, 68, 89, 119])]  # one from five files
    behind = copy(recs[5], 125)  # its file ends at offset 9, 110 behind the newest: outside the window
    again = make_task(cluster, root, dedupe_offsets=100)
    again.put([*copies, behind])
    again.flush()
    rows = read_rows(again.store.client, root)["people/dt=2023-11-14"]
    assert sorted(r["_offset"] for r in rows) == [*range(120), 125]
    assert again.duplicates_skipped == 5
