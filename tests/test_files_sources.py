"""File sources end to end (AGG-05): local, FTP (pyftpdlib) and SFTP (asyncssh) directories -> Kafka.

Real servers on loopback (ports 30201/30202 + passive 30240-30259), the session's real broker and
registry; checks read-once across restarts, resume mid-file, the on_change policies, quarantine
of bad rows with file/line/reason, and the import reports through the API.
"""

from __future__ import annotations

import asyncio
import json
import os
import threading
import time
import uuid

import pytest
from fastapi.testclient import TestClient

from api.app import create_app
from api.auth import api_key_for
from connectors.files.reports import ImportReports
from connectors.files.source import FileSourceConfig, FileSourceTask
from connectors.runtime import SourceRuntime
from schemas.serde import WireCodec
from tests.sources import consume_settled, raw_messages

FTP_PORT, SFTP_PORT = 30201, 30202
COLUMNS = [
    {"name": "id", "type": "int", "key": True},
    {"name": "name"},
    {"name": "amount", "type": "decimal", "precision": 10, "scale": 2},
]


def make(settings, root, name, table, **kw) -> tuple[FileSourceTask, SourceRuntime]:
    cfg = {
        "name": name,
        "system": "files_t",
        "table": table,
        "store": {"root": str(root), "pattern": "*.csv"},
        "columns": COLUMNS,
        "settle_seconds": 0,
        "batch_size": 2,
        "control_db_url": settings.resolved_control_db_url,
        **kw,
    }
    task = FileSourceTask(FileSourceConfig(**cfg))
    rt = SourceRuntime(
        task,
        bootstrap=settings.kafka_bootstrap,
        codec=WireCodec(settings.schema_registry_url),
        control_db_url=settings.resolved_control_db_url,
    )
    return task, rt


def topic(table: str) -> str:
    return f"huiliu.files_t.default.{table}"


def test_local_files_read_once_bad_rows_quarantined_and_reported(stack_settings, tmp_path):
    table, name = f"t{uuid.uuid4().hex[:8]}", f"files-{uuid.uuid4().hex[:6]}"
    (tmp_path / "a.csv").write_bytes("id,name,amount\n1,张三,1.5\n2,李四,x\n3,王五,3\n4,赵六\n".encode("gbk"))
    (tmp_path / "b.csv").write_text("id,name,amount\n5,e,5\n6,f,6.25\n", encoding="utf-8")
    (tmp_path / "skip.txt").write_text("not matched")
    task, rt = make(stack_settings, tmp_path, name, table)
    assert rt.drain() == 6
    task.close()
    good = consume_settled(stack_settings, topic(table), 4)
    assert sorted(e["after"]["id"] for e in good) == [1, 3, 5, 6]
    assert {e["op"] for e in good} == {"r"} and good[0]["after"]["name"] == "张三"
    pos = json.loads(good[0]["source"]["position"])
    assert pos["file"].endswith("a.csv") and pos["row"] == 1 and pos["line"] == 2
    bad = consume_settled(stack_settings, topic(table) + ".quarantine", 2)
    reasons = sorted(b["reason"] for b in bad)
    assert "a.csv line 3: column 'amount'" in reasons[0] and "a.csv line 5: expected 3 fields" in reasons[1]

    # A restart reads nothing again; a new file is read; a changed file is re-imported (on_change: reread).
    task, rt = make(stack_settings, tmp_path, name, table)
    assert rt.drain() == 0
    (tmp_path / "c.csv").write_text("id,name,amount\n7,g,7\n")
    assert rt.drain() == 1
    with open(tmp_path / "b.csv", "a") as f:
        f.write("8,h,8\n")
    os.utime(tmp_path / "b.csv", (time.time() + 5, time.time() + 5))
    assert rt.drain() == 3
    task.close()
    reports = ImportReports(stack_settings.resolved_control_db_url).list(connector=name)
    assert [(r["path"].rsplit("/", 1)[1], r["status"], r["rows_ok"], r["rows_bad"]) for r in reports] == [
        ("b.csv", "done", 3, 0),
        ("c.csv", "done", 1, 0),
        ("b.csv", "done", 2, 0),
        ("a.csv", "done_with_errors", 2, 2),  # half its rows bad: past bad_row_ratio
    ]

    client = TestClient(create_app(stack_settings))
    headers = {"X-API-Key": api_key_for(stack_settings)}
    assert client.get("/imports").status_code == 401
    listed = client.get("/imports", params={"connector": name}, headers=headers).json()["imports"]
    one = client.get(f"/imports/{listed[-1]['id']}", headers=headers).json()
    assert one["rows_read"] == 4 and [e["line"] for e in one["errors"]] == [3, 5]
    assert client.get("/imports/999999999", headers=headers).status_code == 404


def test_columnar_import_publishes_the_same_bytes_as_row_by_row(stack_settings, tmp_path, monkeypatch):
    """Rows typed and encoded in columns (RowFrame) reach Kafka byte for byte as the row-by-row path
    writes them; the bad rows of both paths are quarantined with the same reasons."""
    table, name = f"t{uuid.uuid4().hex[:8]}", f"files-{uuid.uuid4().hex[:6]}"
    (tmp_path / "in").mkdir()
    (tmp_path / "in" / "all.csv").write_text(
        "id,name,amount,score,born,ok,seen\n"
        "1,张三,1.5,0.25,19900102,是,2024-01-02T03:04:05\n"
        "2,,x,1,,,\n"  # amount not a decimal
        "3,李四,-12345678.99,-1e300,20000229,false,2024-02-29 23:59:59.123456\n"
        "4,\"a,b\",,,,,\n"
        ",nokey,1,1,,,\n"  # key empty
        "5,e,1.999,1,,,\n",
        encoding="utf-8",
    )  # would round
    cols = [
        {"name": "id", "type": "bigint", "key": True},
        {"name": "name"},
        {"name": "amount", "type": "decimal", "precision": 10, "scale": 2},
        {"name": "score", "type": "double"},
        {"name": "born", "type": "date", "format": "%Y%m%d"},
        {"name": "ok", "type": "bool"},
        {"name": "seen", "type": "datetime"},
    ]

    def run(control: str) -> int:
        url = f"sqlite:///{tmp_path / control}"
        task = FileSourceTask(
            FileSourceConfig(
                name=name,
                system="files_t",
                table=table,
                store={"root": str(tmp_path / "in"), "pattern": "*.csv"},
                columns=cols,
                settle_seconds=0,
                control_db_url=url,
            )
        )
        rt = SourceRuntime(
            task,
            bootstrap=stack_settings.kafka_bootstrap,
            codec=WireCodec(stack_settings.schema_registry_url),
            control_db_url=url,
        )
        try:
            return rt.drain()
        finally:
            task.close()

    assert run("columns.db") == 6
    with monkeypatch.context() as m:  # the same file, typed and encoded row by row
        m.setattr("connectors.files.source.type_batch", lambda typer, records: None)
        assert run("rows.db") == 6
    messages = raw_messages(stack_settings, topic(table), 6)
    assert len(messages) == 6 and messages[:3] == messages[3:]
    good = consume_settled(stack_settings, topic(table), 6)[:3]
    assert [e["after"]["id"] for e in good] == [1, 3, 4]
    assert good[1]["after"]["seen"].microsecond == 123456 and good[2]["after"]["name"] == "a,b"
    reasons = [b["reason"] for b in consume_settled(stack_settings, topic(table) + ".quarantine", 6)]
    assert len(reasons) == 6 and reasons[:3] == reasons[3:]
    assert [r.split(": ", 1)[1].split(":")[0] for r in reasons[:3]] == [
        "column 'amount'",
        "column 'id' is required but empty",
        "column 'amount'",
    ]


def test_restart_mid_file_resumes_after_last_durable_row_and_ignore_policy(stack_settings, tmp_path):
    table, name = f"t{uuid.uuid4().hex[:8]}", f"files-{uuid.uuid4().hex[:6]}"
    (tmp_path / "big.csv").write_text("id,name,amount\n" + "".join(f"{i},n{i},{i}\n" for i in range(1, 12)))
    task, rt = make(stack_settings, tmp_path, name, table, on_change="ignore")
    rt.run_once()
    rt.run_once()  # 4 rows durable, then the process "dies"
    task.close()
    task, rt = make(stack_settings, tmp_path, name, table, on_change="ignore")
    assert rt.drain() == 7
    events = consume_settled(stack_settings, topic(table), 11)
    assert sorted(e["after"]["id"] for e in events) == list(range(1, 12))  # each once
    seqs = [e["source"]["sequence"] for e in events]
    assert seqs == sorted(seqs)
    with open(tmp_path / "big.csv", "a") as f:
        f.write("12,n12,12\n")
    assert rt.drain() == 0
    task.close()
    statuses = [r["status"] for r in ImportReports(stack_settings.resolved_control_db_url).list(connector=name)]
    assert statuses == ["changed_ignored", "done"]


@pytest.fixture(scope="module")
def ftp_server(tmp_path_factory):
    from pyftpdlib.authorizers import DummyAuthorizer
    from pyftpdlib.handlers import FTPHandler
    from pyftpdlib.servers import ThreadedFTPServer

    root = tmp_path_factory.mktemp("ftp")
    auth = DummyAuthorizer()
    auth.add_user("loader", "secret", str(root), perm="elradfmw")
    handler = type("Handler", (FTPHandler,), {"authorizer": auth, "passive_ports": range(30240, 30260)})
    server = ThreadedFTPServer(("127.0.0.1", FTP_PORT), handler)
    thread = threading.Thread(target=server.serve_forever, kwargs={"timeout": 0.2}, daemon=True)
    thread.start()
    yield root
    server.close_all()


@pytest.fixture(scope="module")
def sftp_server(tmp_path_factory):
    import asyncssh

    root = tmp_path_factory.mktemp("sftp")

    class Server(asyncssh.SSHServer):
        def begin_auth(self, username):
            return True

        def password_auth_supported(self):
            return True

        def validate_password(self, username, password):
            return (username, password) == ("loader", "secret")

    loop = asyncio.new_event_loop()
    key = asyncssh.generate_private_key("ssh-ed25519")
    server = loop.run_until_complete(
        asyncssh.listen(
            "127.0.0.1",
            SFTP_PORT,
            server_factory=Server,
            server_host_keys=[key],
            sftp_factory=lambda chan: asyncssh.SFTPServer(chan, chroot=str(root)),
        )
    )
    thread = threading.Thread(target=loop.run_forever, daemon=True)
    thread.start()
    yield root
    loop.call_soon_threadsafe(server.close)
    loop.call_soon_threadsafe(loop.stop)
    thread.join(5)


@pytest.mark.parametrize("kind", ["ftp", "sftp"])
def test_remote_directories(kind, stack_settings, request):
    root = request.getfixturevalue(f"{kind}_server")
    (root / "in").mkdir(exist_ok=True)
    (root / "in" / "x.jsonl").write_text('{"id": 1, "name": "a", "amount": "1"}\n{"id": "bad"}\n')
    (root / "in" / "y.jsonl").write_text('{"id": 2, "name": "b", "amount": 2.5}\n')
    table, name = f"t{uuid.uuid4().hex[:8]}", f"{kind}-{uuid.uuid4().hex[:6]}"
    store = {
        "kind": kind,
        "root": "/in",
        "pattern": "*.jsonl",
        "port": FTP_PORT if kind == "ftp" else SFTP_PORT,
        "user": "loader",
        "password": "secret",
    }
    task, rt = make(stack_settings, root, name, table, store=store, format={"kind": "jsonl"}, mode="once")
    assert rt.drain() == 3 and task.finished
    task.close()
    assert sorted(e["after"]["id"] for e in consume_settled(stack_settings, topic(table), 2)) == [1, 2]
    assert (
        "x.jsonl line 2: column 'id'" in consume_settled(stack_settings, topic(table) + ".quarantine", 1)[0]["reason"]
    )
    task, rt = make(stack_settings, root, name, table, store=store, format={"kind": "jsonl"})
    assert rt.drain() == 0  # tracked across restarts
    task.close()
