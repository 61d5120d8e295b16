"""Big-data inputs (AGG-03): HBase scan (through the Thrift test double), HDFS copy and HDFS as a
file store (real single-node HDFS on ports 30230-30234), Hive through a fake DB-API connection."""

from __future__ import annotations

import shutil
from datetime import date
from decimal import Decimal

import happybase
import pytest

from connectors.base import RejectedEvent
from connectors.bigdata.hbase_scan import HBaseScanConfig, HBaseScanTask
from connectors.bigdata.hive import HiveSourceConfig, HiveSourceTask

HBASE_PORT = 30220
HDFS_PORT_BASE = 30230


@pytest.fixture(scope="module")
def hbase():
    from tests.doubles.hbase import start_double

    d = start_double(HBASE_PORT)
    yield d
    d.stop()


def test_hbase_scan_is_typed_resumable_and_quarantines(hbase):
    conn = happybase.Connection("127.0.0.1", HBASE_PORT)
    conn.create_table("people", {"p": {}})
    t = conn.table("people")
    for i in range(1, 6):
        t.put(
            f"r{i:03d}".encode(),
            {b"p:name": f"人{i}".encode(), b"p:born": b"1990-01-0%d" % i, b"p:score": b"12.5" if i != 4 else b"oops"},
        )
    t.put(b"x001", {b"p:name": b"other prefix"})
    conn.close()
    cfg = HBaseScanConfig(
        name="hb",
        table="people",
        port=HBASE_PORT,
        row_prefix="r",
        batch_size=2,
        columns=[
            {"name": "name", "source": "p:name"},
            {"name": "born", "type": "date", "source": "p:born"},
            {"name": "score", "type": "decimal", "precision": 6, "scale": 2, "source": "p:score"},
        ],
    )
    task = HBaseScanTask(cfg)
    task.start({})
    first = task.poll()
    assert [e.after for e in first.events][0] == {
        "row_key": "r001",
        "name": "人1",
        "born": date(1990, 1, 1),
        "score": Decimal("12.5"),
    }
    task.close()
    task = HBaseScanTask(cfg)  # restart from the stored offset
    task.start(first.offsets)
    rest = []
    while (batch := task.poll()).events or not task.offset.get("done"):
        rest += batch.events
    task.close()
    assert [e.position["row"] for e in rest] == [f"r{i:03d}".encode().hex() for i in (3, 4, 5)]
    bad = [e for e in rest if isinstance(e, RejectedEvent)]
    assert len(bad) == 1 and "column 'p:score'" in bad[0].reason and bad[0].after["row_key"] == "r004"
    assert task.captured.key_columns == ["row_key"]


class FakeCursor:
    def __init__(self, rows):
        self.rows, self.sql = rows, None

    def execute(self, sql):
        self.sql = sql

    def fetchmany(self, n):
        out, self.rows = self.rows[:n], self.rows[n:]
        return out


def test_hive_typed_read_through_a_dbapi_connection():
    cursor = FakeCursor([(1, "a", "2024-01-01"), (2, "b", "bad"), (3, "c", None)])
    conn = type("Conn", (), {"cursor": lambda self: cursor, "close": lambda self: None})()
    seen = {}
    cfg = HiveSourceConfig(
        name="hv",
        table="people",
        batch_size=2,
        where="dt = '2024-01-01'",
        columns=[{"name": "id", "type": "bigint", "key": True}, {"name": "name"}, {"name": "dt", "type": "date"}],
    )
    task = HiveSourceTask(cfg, connect=lambda **kw: seen.update(kw) or conn)
    task.start({})
    assert cursor.sql == "SELECT `id`, `name`, `dt` FROM `default`.`people` WHERE dt = '2024-01-01'"
    assert seen["port"] == 10000
    b1, b2 = task.poll(), task.poll()
    assert b1.events[0].after == {"id": 1, "name": "a", "dt": date(2024, 1, 1)}
    assert isinstance(b1.events[1], RejectedEvent) and b2.offsets == {"default.people": {"done": True, "rows": 3}}
    done = HiveSourceTask(cfg, connect=lambda **kw: pytest.fail("a finished read must not reconnect"))
    done.start(b2.offsets)
    assert done.poll().events == []
    with pytest.raises(ValueError, match="identifier"):
        HiveSourceTask(cfg.model_copy(update={"table": "x; drop"}))


@pytest.fixture(scope="module")
def hdfs_cluster(tmp_path_factory):
    if shutil.which("java") is None:
        pytest.skip("java is not installed")
    from deploy.hdfs import jars
    from deploy.hdfs.cluster import HdfsCluster

    try:
        jars.ensure_jars()
    except jars.JarsUnavailable as exc:
        pytest.skip(f"Hadoop jars cannot be fetched: {exc}")
    c = HdfsCluster.from_port_base(tmp_path_factory.mktemp("hdfs"), HDFS_PORT_BASE)
    c.start()
    yield c
    c.stop()


@pytest.mark.hdfs
def test_hdfs_copy_and_hdfs_as_a_file_store(hdfs_cluster, tmp_path):
    from hdfs import InsecureClient

    from connectors.bigdata.hdfs_copy import HdfsCopyConfig, copy_tree
    from connectors.files.source import FileSourceConfig, FileSourceTask

    client = InsecureClient(hdfs_cluster.webhdfs_url)
    client.write("/in/a.csv", data="id,name\n1,甲\n2,乙\n".encode("gbk"), overwrite=True)
    client.write("/in/sub/b.csv", data=b"id,name\n3,c\n", overwrite=True)
    client.write("/in/skip.txt", data=b"x", overwrite=True)
    cfg = HdfsCopyConfig(source_url=hdfs_cluster.webhdfs_url, source_root="/in", pattern="*.csv", target_root="/out")
    report = copy_tree(cfg)
    assert sorted(report.copied) == ["/in/a.csv", "/in/sub/b.csv"] and report.bytes > 0
    with client.read("/out/sub/b.csv") as r:
        assert r.read() == b"id,name\n3,c\n"
    again = copy_tree(cfg)
    assert again.copied == [] and len(again.skipped) == 2  # idempotent re-run

    task = FileSourceTask(
        FileSourceConfig(
            name="hdfs-files",
            system="hdfs_t",
            table="people",
            settle_seconds=0,
            store={"kind": "hdfs", "url": hdfs_cluster.webhdfs_url, "root": "/out", "pattern": "*.csv"},
            control_db_url=f"sqlite:///{tmp_path / 'control.db'}",
        )
    )
    task.start({})
    rows = [e.after for e in task.poll().all_events()]
    task.close()
    assert rows == [{"id": "1", "name": "甲"}, {"id": "2", "name": "乙"}]
