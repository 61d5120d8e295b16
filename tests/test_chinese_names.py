"""Chinese system, table and column names end to end (issue 14): a PostgreSQL table named in Chinese,
captured by a connector on the worker, reaches its own readable topic (pinyin + hash, no `____`),
with Avro field names in pinyin that keep the source name (`doc`, `huiliu.original_name`), and a
ClickHouse sink connector writes it into columns of those names. Two systems whose names used to
collide get two topics; a clash that remains is refused naming both originals.
"""

from __future__ import annotations

import json
import time
import uuid

import httpx
import pytest
from sqlalchemy import create_engine, text

from api.auth import api_key_for
from schemas.envelope import envelope_schema
from schemas.naming import ORIGINAL_NAME, NameCollision, avro_name, field_names, topic_name
from schemas.serde import WireCodec
from schemas.sqltypes import ColumnSpec
from tests.connect_cluster import (
    own_control_db,  # noqa: F401 - a fixture: stack_settings with its own control DB
    start_api,
    start_worker,
    stop,
    wait_until,
)

RUN = uuid.uuid4().hex[:6]
TABLE = f"企业信息_{RUN}"
COLUMNS = '"编号" integer PRIMARY KEY, "企业名称" text, "企业" text, "起夜" text, "更新时间" timestamp NOT NULL'


def test_names_are_readable_and_apart():
    assert topic_name("huiliu", "企业登记", "public", "people") != topic_name("huiliu", "个人登记", "public", "people")
    topic = topic_name("huiliu", "企业登记", "public", "企业信息")
    assert topic.startswith("huiliu.qiyedengji_") and ".public.qiyexinxi_" in topic and "____" not in topic
    assert topic_name("huiliu", "civil", "public", "people") == "huiliu.civil.public.people"  # valid names kept
    assert topic_name("huiliu", "a b", None, "t") != topic_name("huiliu", "a_b", None, "t")
    assert field_names(["id", "姓名", "身份证号"]) == {"id": "id", "姓名": "xingming", "身份证号": "shenfenzhenghao"}
    homophones = field_names(["企业", "起夜"])  # both read "qiye": both get a hash suffix
    assert len(set(homophones.values())) == 2 and all(v.startswith("qiye_") for v in homophones.values())
    with pytest.raises(NameCollision) as clash:
        field_names(["qiye_00c5fd", "企业", "起夜"], "企业信息")
    assert "'qiye_00c5fd'" in str(clash.value) and "'企业'" in str(clash.value) and "企业信息" in str(clash.value)
    assert avro_name("my-table") == "my_table" and avro_name("企业登记").startswith("qiyedengji_")


def test_schema_keeps_the_original_names():
    import sqlalchemy as sa

    cols = [ColumnSpec("编号", sa.Integer(), False, True), ColumnSpec("姓名", sa.String())]
    row = envelope_schema("企业登记", "public", "企业信息", cols)["fields"][0]["type"][1]
    assert row[ORIGINAL_NAME] == {"system": "企业登记", "schema": "public", "table": "企业信息"}
    assert [(f["name"], f["doc"], f[ORIGINAL_NAME]) for f in row["fields"]] == [
        ("bianhao", "编号", "编号"),
        ("xingming", "姓名", "姓名"),
    ]


def read_values(settings, topic: str, count: int, timeout: float = 90) -> list[dict]:
    from confluent_kafka import OFFSET_BEGINNING, Consumer, TopicPartition

    codec = WireCodec(settings.schema_registry_url)
    consumer = Consumer(
        {
            "bootstrap.servers": settings.kafka_bootstrap,
            "group.id": f"names-{uuid.uuid4().hex}",
            "enable.auto.commit": False,
            "topic.metadata.refresh.interval.ms": 1000,
        }
    )
    consumer.assign([TopicPartition(topic, 0, OFFSET_BEGINNING)])
    values: list[dict] = []
    deadline = time.time() + timeout
    try:
        while len(values) < count and time.time() < deadline:
            for m in consumer.consume(500, 1.0):
                if not m.error():
                    values.append(codec.decode(m.value())[1])
    finally:
        consumer.close()
    assert len(values) >= count, f"{len(values)} of {count} events in {topic}"
    return values


@pytest.fixture(scope="module")
def connect(stack_settings, tmp_path_factory):
    logs = tmp_path_factory.mktemp("names-logs")
    api, base = start_api(stack_settings, logs / "api.log")
    worker = start_worker(stack_settings, f"names-worker-{RUN}", logs / "worker.log")
    client = httpx.Client(base_url=base, headers={"X-API-Key": api_key_for(stack_settings)}, timeout=60)
    yield client
    for name in client.get("/connectors").json():
        if RUN in name:
            client.delete(f"/connectors/{name}")
    client.close()
    stop(worker)
    stop(api)


def test_chinese_names_from_postgresql_to_kafka_and_clickhouse(connect, stack_settings, pg_url):
    from sinks.clickhouse import client_from_url

    engine = create_engine(pg_url)
    with engine.begin() as conn:
        conn.execute(text(f'CREATE TABLE "{TABLE}" ({COLUMNS})'))
        for i in range(1, 21):
            conn.execute(
                text(f'INSERT INTO "{TABLE}" VALUES (:i, :n, :a, :b, clock_timestamp())'),
                {"i": i, "n": f"企业{i}", "a": f"a{i}", "b": f"b{i}"},
            )
    engine.dispose()
    source = {
        "connector.class": "relational.timestamp",
        "url": pg_url,
        "system": "企业登记",
        "db_schema": "public",
        "table": TABLE,
        "timestamp_column": "更新时间",
    }
    r = connect.post("/connectors", json={"name": f"qiye-src-{RUN}", "config": source})
    assert r.status_code == 201, r.text
    topic = topic_name(stack_settings.topic_prefix, "企业登记", "public", TABLE)
    assert connect.get(f"/connectors/qiye-src-{RUN}/topics").json()[f"qiye-src-{RUN}"]["topics"] == [topic]
    values = read_values(stack_settings, topic, 20)
    assert sorted(v["after"]["bianhao"] for v in values) == list(range(1, 21))
    assert values[0]["after"]["qiyemingcheng"].startswith("企业") and values[0]["source"]["table"] == TABLE
    schema = httpx.get(f"{stack_settings.schema_registry_url}/subjects/{topic}-value/versions/latest").json()
    row = json.loads(schema["schema"])["fields"][0]["type"][1]
    by_original = {f[ORIGINAL_NAME]: f["name"] for f in row["fields"]}
    assert by_original["编号"] == "bianhao" and by_original["企业名称"] == "qiyemingcheng"
    assert by_original["更新时间"] == "gengxinshijian"
    assert by_original["企业"] != by_original["起夜"] and by_original["企业"].startswith("qiye_")
    assert row[ORIGINAL_NAME]["table"] == TABLE and row[ORIGINAL_NAME]["system"] == "企业登记"

    sink_table = f"qiye_{RUN}"
    sink = {"connector.class": "clickhouse", "topics": topic, "url": stack_settings.clickhouse_url, "table": sink_table}
    r = connect.post("/connectors", json={"name": f"qiye-sink-{RUN}", "config": sink})
    assert r.status_code == 201, r.text
    ch = client_from_url(stack_settings.clickhouse_url)
    try:

        def rows():
            if not ch.execute(f"EXISTS TABLE {sink_table}")[0][0]:
                return False
            return ch.execute(f"SELECT count() FROM {sink_table} FINAL WHERE _deleted = 0")[0][0] == 20

        wait_until(rows, 120, interval=1, message="20 rows in ClickHouse")
        columns = {name for (name,) in ch.execute(f"SELECT name FROM system.columns WHERE table = '{sink_table}'")}
        assert {"bianhao", "qiyemingcheng", "gengxinshijian", by_original["企业"], by_original["起夜"]} <= columns
        comments = dict(ch.execute(f"SELECT name, comment FROM system.columns WHERE table = '{sink_table}'"))
        assert comments["qiyemingcheng"] == "企业名称" and comments["bianhao"] == "编号"  # the source names
        assert comments["_version"] == ""
        name_of_7 = ch.execute(f"SELECT qiyemingcheng FROM {sink_table} FINAL WHERE bianhao = 7")[0][0]
        assert name_of_7 == "企业7"
    finally:
        ch.disconnect()


def test_a_table_whose_columns_would_meet_is_refused_on_create(connect, pg_url):
    clash = f"clash_{RUN}"
    engine = create_engine(pg_url)
    with engine.begin() as conn:
        conn.execute(
            text(
                f'CREATE TABLE "{clash}" (id integer PRIMARY KEY, "qiye_00c5fd" text, "企业" text, '
                '"起夜" text, updated_at timestamp NOT NULL)'
            )
        )
    engine.dispose()
    config = {
        "connector.class": "relational.timestamp",
        "url": pg_url,
        "system": "企业登记",
        "table": clash,
        "timestamp_column": "updated_at",
    }
    r = connect.post("/connectors", json={"name": f"clash-{RUN}", "config": config})
    assert r.status_code == 400, r.text
    [error] = r.json()["errors"]
    assert error["field"] == "table" and "'qiye_00c5fd'" in error["message"] and "'企业'" in error["message"]


def test_state_directories_and_hbase_families_keep_chinese_tables_apart(tmp_path):
    from connectors.relational.diff_state import table_dir
    from sinks.hbase.mapping import sanitize_family

    assert table_dir(tmp_path, "public.企业") != table_dir(tmp_path, "public.个人")
    assert table_dir(tmp_path, "public.企业").name.startswith("public.qiye_")
    assert table_dir(tmp_path, "public.people").name == "public.people"  # ASCII names as before
    assert sanitize_family("企业登记") != sanitize_family("个人登记")
    assert sanitize_family("企业登记").startswith("qiyedengji_") and sanitize_family("a b") == "a_b"
