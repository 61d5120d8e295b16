"""Department files through the HTTP API into ClickHouse (issue 21): a real API process, a real
worker, the session's broker, registry and ClickHouse.

- A GB18030 CSV with Chinese headers, CRLF, a title block, ~3% bad rows, a totals row and a footer:
  first read with a column declared wrong (amounts with thousands separators refused) -> the import
  ends `failed` past its bad-row ratio and a message reaches the connector's tenant; the config is
  fixed and the same file imported again through POST /imports (re-read because the format
  changed, no force needed) -> `done_with_errors`, exact counts by reason, bad rows paged and
  exported (CSV/XLSX with the file's headers and content), quarantine records carrying the raw row;
  in ClickHouse the good rows only, `sum(capital)` without the totals row.
- An .xlsx with a merged title row, totals and footer rows, and two sheets (the data on the second,
  picked by name): the title and totals are absent, the report says what was chosen and skipped.
- JSON lines with nesting: `columns[].source` paths into nested objects.
"""

from __future__ import annotations

import csv
import io
import json
import uuid
from decimal import Decimal

import openpyxl
import pytest

from deploy.kafka import ensure_topics
from schemas.naming import topic_name
from tests.connect_cluster import (  # noqa: F401 - clickhouse_of_module (ch), own_control_db: fixtures
    clickhouse_of_module,
    cluster_of_run,
    own_control_db,
    wait_until,
)
from tests.sources import consume
from tests.support.department_files import HEADER, department_xlsx

RUN = uuid.uuid4().hex[:6]
ROWS = 600  # 18 bad (3%): 12 amounts, 6 dates


@pytest.fixture(scope="module")
def cluster(stack_settings, tmp_path_factory):
    with cluster_of_run(stack_settings, tmp_path_factory, RUN, "dept") as client:
        yield client


def columns(thousands: str | None = ","):
    return [
        {"name": "id", "type": "int", "key": True, "source": "序号"},
        {"name": "credit_code", "source": "统一社会信用代码"},
        {"name": "name", "source": "企业名称"},
        {
            "name": "capital",
            "type": "decimal",
            "precision": 14,
            "scale": 2,
            "source": "注册资本",
            "thousands": thousands,
        },
        {"name": "founded", "type": "date", "source": "成立日期", "format": ["%Y/%m/%d", "%Y年%m月%d日"]},
        {"name": "phone", "source": "联系电话"},
    ]


def department_csv() -> tuple[bytes, Decimal, int]:
    lines = ["某市市场监督管理局企业登记情况表,,,,,", "填报单位：某区分局,,,,填报日期：2022年7月1日,", ",".join(HEADER)]
    total, good = Decimal(0), 0
    for i in range(1, ROWS + 1):
        amount, founded = f'"{i},{i % 1000:03d}.50"', "2022/06/30" if i % 2 else "2022年6月30日"
        if i % 50 == 0:
            amount = "12x"  # 12 bad amounts
        elif i % 100 == 25:
            founded = "2022-13-45"  # 6 bad dates
        else:
            total += Decimal(f"{i}{i % 1000:03d}.50")
            good += 1
        lines.append(f"{i},91370100MA{i:08d},企业{i}䶮堃,{amount},{founded},1380000{i:04d}")
    lines += [f"合计,,,{total},,", "填报人：张三,,,,,", "注：金额单位为元,,,,,"]
    return ("\r\n".join(lines) + "\r\n").encode("gb18030"), total, good


def sink(client, stack_settings, name: str, system: str, table: str) -> str:
    ch_table = f"{table}_ch"
    config = {
        "connector.class": "clickhouse",
        "topics": topic_name(stack_settings.topic_prefix, system, None, table),
        "url": stack_settings.clickhouse_url,
        "table": ch_table,
    }
    r = client.post("/connectors", json={"name": name, "config": config})
    assert r.status_code == 201, r.text
    return ch_table


# Waits for ClickHouse are long: the module's one worker also runs whatever connectors earlier
# modules left in the session's control DB, which slows it in a full run.
def ch_rows(ch, table: str, what: str = "count()"):
    if not ch.execute(f"EXISTS TABLE {table}")[0][0]:
        return None
    return ch.execute(f"SELECT {what} FROM {table} FINAL WHERE _deleted = 0")[0][0]


def reports(client, name: str) -> list[dict]:
    return client.get("/imports", params={"connector": name}).json()["imports"]


def job_done(client, job_id: str) -> dict:
    return wait_until(
        lambda: (j := client.get(f"/jobs/{job_id}").json())["state"] not in ("queued", "running") and j,
        120,
        message="import job finished",
    )


def test_gb18030_csv_fails_then_is_reimported_after_the_fix_into_clickhouse(cluster, stack_settings, ch):
    client, name, system, table = cluster, f"dept-csv-{RUN}", f"dept{RUN}", f"firms_{RUN}"
    root = stack_settings.resolved_data_root / name
    root.mkdir(parents=True, exist_ok=True)
    data, total, good = department_csv()
    (root / "企业登记.csv").write_bytes(data)
    config = {
        "connector.class": "files",
        "system": system,
        "table": table,
        "store": {"root": str(root), "pattern": "*.csv"},
        "settle_seconds": 0,
        "on_bad_ratio": "failed",
        "columns": columns(thousands=None),  # wrong: amounts are written 1,000.50
    }
    assert client.post("/connectors", json={"name": name, "config": config}).status_code == 201
    ch_table = sink(client, stack_settings, f"dept-csv-sink-{RUN}", system, table)

    first = wait_until(
        lambda: (r := reports(client, name)) and r[0]["status"] != "reading" and r[0], 120, message="first import"
    )
    assert first["status"] == "failed" and first["rows_read"] == ROWS and first["rows_bad"] > ROWS / 2
    assert "bad_row_ratio" in first["message"]
    assert first["reasons"][0]["column"] == "注册资本" and first["reasons"][0]["code"] == "type"
    messages = client.get("/messages", params={"category": "import"}).json()
    assert any(f"import {first['id']} " in m["subject"] and m["level"] == "error" for m in messages)

    # fix the column, pause (or both the task and the import would read it), import again: the
    # format changed, so the file is read again as a new import without `force`
    assert client.put(f"/connectors/{name}/pause").status_code == 202
    fixed = {**config, "columns": columns(), "on_bad_ratio": "done_with_errors"}
    assert client.put(f"/connectors/{name}/config", json=fixed).status_code == 200
    r = client.post("/imports", json={"connector": name, "path": "企业登记.csv"})
    assert r.status_code == 202, r.text
    job = job_done(client, r.json()["id"])
    assert job["state"] == "succeeded", job
    [report] = job["result"]["imports"]
    assert job["result"]["unchanged"] == []
    assert (
        job["message"].startswith("1 of 1 files imported: ") and f"{good} rows ok, {ROWS - good} bad" in job["message"]
    )
    assert report["id"] != first["id"] and report["status"] == "done_with_errors"
    assert (report["rows_ok"], report["rows_bad"], report["rows_read"]) == (good, ROWS - good, ROWS)

    one = client.get(f"/imports/{report['id']}").json()
    assert one["details"]["header_line"] == 3 and [t["line"] for t in one["details"]["title_rows"]] == [1, 2]
    assert one["details"]["skipped_count"] == 3 and one["details"]["skipped"][0]["text"].startswith("合计")
    assert one["details"]["encoding"] == "gb18030" and one["details"]["columns"] == HEADER
    assert one["details"]["reread_of"] == first["id"] and one["details"]["duplicates"].startswith("keyed table")
    assert {(g["code"], g["column"]): g["count"] for g in one["reasons"]} == {
        ("type", "注册资本"): 12,
        ("format", "成立日期"): 6,
    }
    assert one["errors_total"] == 18 and one["errors_shown"] == 18 and one["bad_rows_kept"] == 18
    zh = client.get(f"/imports/{report['id']}", params={"lang": "zh"}).json()
    assert zh["errors"][0]["reason"].startswith("列“") and zh["reasons"][0]["label"].startswith("列“注册资本”")

    # paged bad rows with their content; then the export with the department's headers
    page1 = client.get(f"/imports/{report['id']}/rows", params={"limit": 10}).json()
    page2 = client.get(f"/imports/{report['id']}/rows", params={"limit": 10, "offset": 10}).json()
    assert (page1["total"], page1["shown"], page1["more"]) == (18, 10, True)
    assert (page2["shown"], page2["more"]) == (8, False)
    first_bad = page1["rows"][0]
    assert first_bad["line"] == 3 + 25 and first_bad["code"] == "format" and first_bad["column"] == "成立日期"
    assert first_bad["raw"] == "25,91370100MA00000025,企业25䶮堃,\"25,025.50\",2022-13-45,13800000025"
    assert first_bad["fields"]["企业名称"] == "企业25䶮堃"
    dates = client.get(f"/imports/{report['id']}/rows", params={"code": "format"}).json()
    assert dates["total"] == 6 and {r["code"] for r in dates["rows"]} == {"format"}

    exported = client.get(f"/imports/{report['id']}/rows.csv", params={"lang": "zh"})
    assert exported.status_code == 200 and exported.content.startswith(b"\xef\xbb\xbf")
    table_rows = list(csv.reader(io.StringIO(exported.content.decode("utf-8-sig"))))
    assert table_rows[0] == ["行号", "文件行", "原因", *HEADER, "原始内容"] and len(table_rows) == 19
    assert table_rows[1][HEADER.index("成立日期") + 3] == "2022-13-45" and "企业25䶮堃" in table_rows[1][-1]
    xlsx = client.get(f"/imports/{report['id']}/rows.xlsx")
    sheet = openpyxl.load_workbook(io.BytesIO(xlsx.content), read_only=True).worksheets[0]
    got = list(sheet.iter_rows(values_only=True))
    assert list(got[0]) == ["row", "line", "reason", *HEADER, "raw content"] and len(got) == 19

    # the quarantine records carry the raw row: original bytes and decoded text
    topic = topic_name(stack_settings.topic_prefix, system, None, table)
    quarantined = consume(stack_settings, topic + ".quarantine", first["rows_bad"] + 18)
    last = [q for q in quarantined if "2022-13-45" in (q["original_value"] or b"").decode("gb18030")]
    assert len(last) >= 6
    q = last[-1]
    assert q["original_value"].endswith(b"\r\n") and "企业" in q["original_value"].decode("gb18030")
    doc = json.loads(q["original_json"])
    assert doc["raw"]["encoding"] == "gb18030" and "䶮堃" in doc["raw"]["text"] and doc["reason_code"] == "format"

    # ClickHouse: the good rows, the totals row absent (sum not doubled)
    assert client.put(f"/connectors/{name}/resume").status_code == 202
    wait_until(lambda: ch_rows(ch, ch_table) == good, 300, interval=1, message=f"{good} rows in ClickHouse")
    assert ch_rows(ch, ch_table, "sum(capital)") == total
    assert ch_rows(ch, ch_table, "countIf(name = '企业1䶮堃')") == 1

    # an unchanged file is not read again without force; with force it is, as a new import
    r = client.post("/imports", json={"connector": name, "path": "企业登记.csv"})
    assert r.status_code == 409  # running again and its pattern lists the file
    assert client.put(f"/connectors/{name}/pause").status_code == 202
    again = job_done(client, client.post("/imports", json={"connector": name, "path": "企业登记.csv"}).json()["id"])
    assert again["result"]["unchanged"] and "already imported unchanged" in again["message"]
    forced = job_done(
        client, client.post("/imports", json={"connector": name, "path": "企业登记.csv", "force": True}).json()["id"]
    )
    assert forced["result"]["imports"][0]["id"] > report["id"] and forced["result"]["unchanged"] == []


def test_import_of_a_subfolder_the_pattern_does_not_list_is_not_a_conflict(cluster, stack_settings):
    client, name = cluster, f"dept-sub-{RUN}"
    root = stack_settings.resolved_data_root / name
    (root / "manual").mkdir(parents=True, exist_ok=True)
    (root / "manual" / "a.csv").write_text("序号,名称\n1,a\n", encoding="utf-8")
    config = {
        "connector.class": "files",
        "system": f"dsub{RUN}",
        "table": "t",
        "store": {"root": str(root), "pattern": "*.csv"},
        "settle_seconds": 0,
    }
    assert client.post("/connectors", json={"name": name, "config": config}).status_code == 201
    r = client.post("/imports", json={"connector": name, "path": "manual/a.csv"})
    assert r.status_code == 202, r.text  # `*.csv` lists the root only, like Path.glob
    assert job_done(client, r.json()["id"])["result"]["imports"][0]["rows_ok"] == 1
    assert client.post("/imports", json={"connector": name, "path": "b.csv"}).status_code == 409


def test_xlsx_title_totals_footer_and_second_sheet_into_clickhouse(cluster, stack_settings, ch):
    client, name, system, table = cluster, f"dept-xlsx-{RUN}", f"deptx{RUN}", f"firmsx_{RUN}"
    root = stack_settings.resolved_data_root / name
    root.mkdir(parents=True, exist_ok=True)
    (root / "名录.xlsx").write_bytes(department_xlsx())
    cols = columns()
    cols[4] = {"name": "founded", "type": "date", "source": "成立日期"}
    config = {
        "connector.class": "files",
        "system": system,
        "table": table,
        "store": {"root": str(root), "pattern": "*.xlsx"},
        "format": {"kind": "xlsx", "sheet": "企业名录"},
        "settle_seconds": 0,
        "columns": cols,
    }
    assert client.post("/connectors", json={"name": name, "config": config}).status_code == 201
    report = wait_until(
        lambda: (r := reports(client, name)) and r[0]["status"] != "reading" and r[0], 120, message="xlsx import"
    )
    assert report["status"] == "done" and (report["rows_ok"], report["rows_bad"]) == (10, 0)
    details = client.get(f"/imports/{report['id']}").json()["details"]
    assert details["sheet"] == "企业名录" and details["header_line"] == 2
    assert details["title_rows"] == [{"line": 1, "text": "某市企业登记情况表"}]
    assert [s["line"] for s in details["skipped"]] == [13, 14]
    # the sink subscribes once the topic exists (a consumer may take minutes to see a topic made after it)
    ch_table = sink(client, stack_settings, f"dept-xlsx-sink-{RUN}", system, table)
    wait_until(lambda: ch_rows(ch, ch_table) == 10, 300, interval=1, message="10 rows in ClickHouse")
    assert ch_rows(ch, ch_table, "sum(capital)") == Decimal("10005.00")


def test_json_lines_with_nesting_read_through_source_paths(cluster, stack_settings, ch):
    client, name, system, table = cluster, f"dept-json-{RUN}", f"deptj{RUN}", f"firmsj_{RUN}"
    root = stack_settings.resolved_data_root / name
    root.mkdir(parents=True, exist_ok=True)
    lines = [
        {"id": i, "org": {"name": f"企业{i}", "legal": {"phone": f"1380000{i:04d}"}}, "tags": ["a", f"t{i}"]}
        for i in range(1, 21)
    ]
    lines[4]["org"]["legal"]["phone"] = None
    text = "\n".join(json.dumps(x, ensure_ascii=False) for x in lines) + "\n{broken\n"
    (root / "a.jsonl").write_text(text, encoding="utf-8")
    config = {
        "connector.class": "files",
        "system": system,
        "table": table,
        "store": {"root": str(root), "pattern": "*.jsonl"},
        "format": {"kind": "jsonl"},
        "settle_seconds": 0,
        "bad_row_ratio": 0.1,
        "columns": [
            {"name": "id", "type": "int", "key": True},
            {"name": "org_name", "source": "org.name"},
            {"name": "phone", "source": "org.legal.phone"},
            {"name": "tag", "source": "tags.1"},
        ],
    }
    assert client.post("/connectors", json={"name": name, "config": config}).status_code == 201
    report = wait_until(
        lambda: (r := reports(client, name)) and r[0]["status"] != "reading" and r[0], 120, message="jsonl import"
    )
    assert report["status"] == "done" and (report["rows_ok"], report["rows_bad"]) == (20, 1)
    bad = client.get(f"/imports/{report['id']}/rows").json()["rows"]
    assert bad[0]["code"] == "not_json" and bad[0]["raw"] == "{broken" and bad[0]["line"] == 21
    ch_table = sink(client, stack_settings, f"dept-json-sink-{RUN}", system, table)
    wait_until(lambda: ch_rows(ch, ch_table) == 20, 300, interval=1, message="20 rows in ClickHouse")
    assert ch.execute(f"SELECT org_name, phone, tag FROM {ch_table} FINAL WHERE id = 3")[0] == (
        "企业3",
        "13800000003",
        "t3",
    )
    assert ch.execute(f"SELECT phone FROM {ch_table} FINAL WHERE id = 5")[0][0] is None


def test_marker_file_completes_a_file_and_temporary_names_are_never_read(cluster, stack_settings):
    import time

    client, name = cluster, f"dept-marker-{RUN}"
    root = stack_settings.resolved_data_root / name
    root.mkdir(parents=True, exist_ok=True)
    config = {
        "connector.class": "files",
        "system": f"dmark{RUN}",
        "table": "t",
        "store": {"root": str(root), "pattern": "*"},
        "settle_seconds": 0,
        "ready_marker": ".ok",
    }
    assert client.post("/connectors", json={"name": name, "config": config}).status_code == 201
    (root / "a.csv").write_text("序号,名称\n1,a\n", encoding="utf-8")  # the writer pauses here
    (root / "b.csv.tmp").write_text("序号,名称\n9,never\n", encoding="utf-8")
    time.sleep(4)  # the worker polled meanwhile: no marker, nothing read
    assert reports(client, name) == []
    with open(root / "a.csv", "a", encoding="utf-8") as f:
        f.write("2,b\n")
    (root / "a.csv.ok").write_text("")
    report = wait_until(
        lambda: (r := reports(client, name)) and r[0]["status"] != "reading" and r[0], 60, message="read"
    )
    assert report["path"].endswith("/a.csv") and (report["status"], report["rows_ok"]) == ("done", 2)
    (root / "c.csv").write_text("序号,名称\n3,c\n", encoding="utf-8")
    (root / "c.ok").write_text("")  # the marker may also replace the extension
    wait_until(lambda: len(reports(client, name)) == 2, 60, message="c.csv read")
    assert sorted(r["path"].rsplit("/", 1)[1] for r in reports(client, name)) == ["a.csv", "c.csv"]


def _file_source(client, stack_settings, name: str, system: str, table: str) -> None:
    root = stack_settings.resolved_data_root / name
    root.mkdir(parents=True, exist_ok=True)
    (root / "a.csv").write_text("序号,联系电话\n1,13800000001\n2,\n", encoding="utf-8")
    config = {
        "connector.class": "files",
        "system": system,
        "table": table,
        "store": {"root": str(root), "pattern": "*.csv"},
        "settle_seconds": 0,
        "columns": [
            {"name": "id", "type": "int", "key": True, "source": "序号"},
            {"name": "phone", "source": "联系电话"},
        ],
    }
    assert client.post("/connectors", json={"name": name, "config": config}).status_code == 201
    wait_until(lambda: (r := reports(client, name)) and r[0]["status"] == "done", 60, message="source read")


def task_status(client, name: str) -> dict:
    tasks = client.get(f"/connectors/{name}/status").json()["tasks"]
    return tasks[0] if tasks else {}


def test_nullable_key_column_fails_the_clickhouse_sink_at_once_with_the_reason(cluster, stack_settings):
    client, system, table = cluster, f"dnull{RUN}", f"nullkey_{RUN}"
    topic = topic_name(stack_settings.topic_prefix, system, None, table)
    ensure_topics(stack_settings.kafka_bootstrap, [topic])
    sink_name = f"dept-nullsink-{RUN}"
    config = {
        "connector.class": "clickhouse",
        "topics": topic,
        "url": stack_settings.clickhouse_url,
        "table": f"{table}_ch",
        "key": ["phone"],
    }
    # saved before the topic has a schema: nothing to check it against yet, so it fails at run
    assert client.post("/connectors", json={"name": sink_name, "config": config}).status_code == 201
    _file_source(client, stack_settings, f"dept-nullsrc-{RUN}", system, table)
    failed = wait_until(
        lambda: (t := task_status(client, sink_name)).get("state") == "FAILED" and t, 60, message="FAILED"
    )
    assert "['phone'] are nullable" in failed["detail"] and "gave up" not in failed["detail"]
    shown = client.get("/health").json()["components"]["connector_tasks"]["failing"]
    assert any(t["connector"] == sink_name and t["state"] == "FAILED" for t in shown)
    # once the schema is known, the same config is refused when it is saved, with the reason
    r = client.put(f"/connectors/{sink_name}/config", json=config)
    assert r.status_code == 400, r.text
    [error] = r.json()["errors"]
    assert error["field"] == "key" and "key column(s) phone are nullable" in error["message"]


def test_a_sink_that_keeps_failing_is_shown_as_failing_and_raises_a_message(cluster, stack_settings, ch):
    client, system, table = cluster, f"dfail{RUN}", f"failing_{RUN}"
    source = f"dept-failsrc-{RUN}"
    _file_source(client, stack_settings, source, system, table)
    sink_name = f"dept-failsink-{RUN}"
    ch_table = sink(client, stack_settings, sink_name, system, table)
    wait_until(lambda: ch_rows(ch, ch_table) == 2, 300, interval=1, message="2 rows in ClickHouse")
    # the table becomes a view with the same columns: the sink's inserts now fail, again and again
    ch.execute(f"RENAME TABLE {ch_table} TO {ch_table}_old")
    ch.execute(f"CREATE VIEW {ch_table} AS SELECT * FROM {ch_table}_old")
    (stack_settings.resolved_data_root / source / "b.csv").write_text("序号,联系电话\n3,x\n", encoding="utf-8")
    failing = wait_until(
        lambda: "retrying in" in ((t := task_status(client, sink_name)).get("detail") or "") and t,
        60,
        message="failing",
    )
    assert failing["state"] == "RUNNING" and "failing since" in failing["detail"] and "(attempt " in failing["detail"]
    assert ch_table in failing["detail"]
    health = client.get("/health").json()
    tasks = health["components"]["connector_tasks"]
    mine = next(t for t in tasks["failing"] if t["connector"] == sink_name)
    assert tasks["status"] == "failing" and health["status"] == "degraded"
    assert mine["state"] == "FAILING" and mine["attempt"] >= 1 and mine["next_retry_s"] > 0
    assert "Method write is not supported" in mine["last_error"]
    wait_until(
        lambda: any(
            m["subject"] == f"connector {sink_name} task 0 is failing"
            for m in client.get("/messages", params={"category": "connector"}).json()
        ),
        60,
        message="a message about the failing sink",
    )
    assert client.delete(f"/connectors/{sink_name}").status_code == 204


def test_append_mode_reads_only_what_was_added(cluster, stack_settings):
    import os
    import time

    client, name = cluster, f"dept-append-{RUN}"
    root = stack_settings.resolved_data_root / name
    root.mkdir(parents=True, exist_ok=True)
    path = root / "流水.csv"
    path.write_bytes("日报\r\n序号,金额\r\n1,1\r\n2,2\r\n".encode("gb18030"))
    config = {
        "connector.class": "files",
        "system": f"dapp{RUN}",
        "table": "t",
        "store": {"root": str(root), "pattern": "*.csv"},
        "settle_seconds": 0,
        "on_change": "append",
        "columns": [{"name": "id", "type": "int", "key": True, "source": "序号"}, {"name": "amount", "source": "金额"}],
    }
    assert client.post("/connectors", json={"name": name, "config": config}).status_code == 201
    wait_until(lambda: (r := reports(client, name)) and r[0]["status"] == "done", 60, message="first read")
    with open(path, "ab") as f:
        f.write("3,3\r\nx,4\r\n".encode("gb18030"))
    os.utime(path, (time.time() + 5, time.time() + 5))
    second = wait_until(
        lambda: len(r := reports(client, name)) == 2 and r[0]["status"] != "reading" and r[0], 60, message="append read"
    )
    assert (second["rows_ok"], second["rows_bad"]) == (1, 1)
    one = client.get(f"/imports/{second['id']}").json()
    assert one["errors"][0]["line"] == 6 and one["details"]["appended_from_byte"] > 0
    assert one["errors"][0]["raw"] == "x,4"


def test_snapshot_of_unknown_tables_is_refused_and_of_a_file_rereads_it(cluster, stack_settings):
    client, name = cluster, f"dept-snap-{RUN}"
    _file_source(client, stack_settings, name, f"dsnap{RUN}", "t")
    r = client.post(f"/connectors/{name}/snapshot", json={"tables": ["no_such_table"]})
    assert r.status_code == 400 and r.json()["errors"][0]["field"] == "tables"
    path = reports(client, name)[0]["path"]
    r = client.post(f"/connectors/{name}/snapshot", json={"tables": [f"file:{path}"]})
    assert r.status_code == 202, r.text
    wait_until(lambda: len(reports(client, name)) == 2, 60, message="the file read again")


def test_a_finished_once_connector_does_not_block_an_import(cluster, stack_settings):
    client, name = cluster, f"dept-once-{RUN}"
    root = stack_settings.resolved_data_root / name
    root.mkdir(parents=True, exist_ok=True)
    (root / "a.csv").write_text("序号,名称\n1,a\n", encoding="utf-8")
    config = {
        "connector.class": "files",
        "system": f"donce{RUN}",
        "table": "t",
        "store": {"root": str(root), "pattern": "*.csv"},
        "settle_seconds": 0,
        "mode": "once",
    }
    assert client.post("/connectors", json={"name": name, "config": config}).status_code == 201
    wait_until(lambda: (x := reports(client, name)) and x[0]["status"] == "done", 60, message="read once")
    r = client.post("/imports", json={"connector": name, "path": "a.csv", "force": True})
    assert r.status_code == 202, r.text  # it lists its directory only once: it will not read this again
    assert job_done(client, r.json()["id"])["result"]["imports"][0]["rows_ok"] == 1
