"""Issue 14: rules and transforms naming columns the source does not have are refused on save.

Through the HTTP API of a real process: the source's columns come from the registry subject of the
input topic, or (no schema yet) from the source connector — a PostgreSQL table reflected, a file
connector's declared columns. A runner connector document saved on its own is checked the same way.
"""

from __future__ import annotations

import uuid

import httpx
import pytest
from sqlalchemy import Integer, Numeric, String, create_engine, text

from connectors.pipeline import PipelineSpec
from schemas.envelope import envelope_schema, key_schema
from schemas.naming import field_names, key_subject, value_subject
from schemas.serde import WireCodec
from schemas.sqltypes import ColumnSpec
from tests.api_process import own_state_settings  # noqa: F401 - a fixture: overrides stack_settings
from tests.support.identity import login, make_user, start_keyed_api

RUN = uuid.uuid4().hex[:6]
TABLE = f"cols_people_{RUN}"
TENANT = f"cols-{RUN}"


@pytest.fixture(scope="module")
def api(stack_settings):
    proc, base, key = start_keyed_api(stack_settings)
    make_user(base, key, f"cols-dev-{RUN}", roles=["developer", "operator"], tenant=TENANT)
    yield base, login(base, f"cols-dev-{RUN}")
    proc.terminate()
    proc.wait(10)


@pytest.fixture(scope="module")
def table(pg_url):
    engine = create_engine(pg_url)
    with engine.begin() as conn:
        conn.execute(
            text(
                f'CREATE TABLE {TABLE} (id integer PRIMARY KEY, name text, phone text, "姓名" text, '
                "updated_at timestamp NOT NULL)"
            )
        )
    engine.dispose()
    return TABLE


def _pipeline(name: str, source: dict, transforms=(), rules=()) -> dict:
    return {
        "name": name,
        "source": source,
        "transforms": list(transforms),
        "rules": list(rules),
        "sink": {"kind": "clickhouse", "config": {"table": name.replace("-", "_")}},
    }


def _pg_source(pg_url: str) -> dict:
    return {
        "kind": "relational.timestamp",
        "config": {"url": pg_url, "system": f"cols{RUN}", "table": TABLE, "timestamp_column": "updated_at"},
    }


def _register(settings, topic: str, system: str, table: str, columns: list[ColumnSpec]) -> None:
    """The topic's value and key subjects, as a source registers them."""
    codec = WireCodec(settings.schema_registry_url)
    codec.register(value_subject(topic), envelope_schema(system, None, table, columns))
    codec.register(key_subject(topic), key_schema(system, None, table, columns))


def _refusal(r: httpx.Response) -> list[dict]:
    assert r.status_code == 422, r.text
    return [e for e in r.json()["detail"] if e["type"] == "unknown_column"]


def test_a_rule_on_a_column_the_table_does_not_have_is_refused_naming_rule_column_and_columns(api, pg_url, table):
    base, dev = api
    rules = [
        {"id": "name_required", "kind": "required", "fields": ["name"]},
        {"id": "phone_format", "kind": "regex", "fields": ["mobile"], "pattern": "^1\\d{10}$"},
    ]
    r = httpx.post(base + "/pipelines", headers=dev, json=_pipeline(f"cols-a-{RUN}", _pg_source(pg_url), rules=rules))
    [error] = _refusal(r)
    chinese = field_names(["姓名"])["姓名"]
    assert error["loc"] == ["body", "rules", 1]
    assert "rule 'phone_format'" in error["msg"] and "'mobile'" in error["msg"]
    assert f"id, name, phone, {chinese} (姓名), updated_at" in error["msg"]
    assert f"table {TABLE} of the source" in error["msg"]
    assert "规则“phone_format”" in error["msg_zh"] and "“mobile”" in error["msg_zh"] and "不存在" in error["msg_zh"]

    # the column exists once a transform before the rule makes it
    renamed = [{"kind": "rename", "mapping": {"phone": "mobile"}}]
    doc = _pipeline(f"cols-a-{RUN}", _pg_source(pg_url), transforms=renamed, rules=rules)
    r = httpx.post(base + "/pipelines", headers=dev, json=doc)
    assert r.status_code == 201, r.text

    # an update is checked too: a transform on a column that is not there
    doc["transforms"] = [{"kind": "trim", "fields": ["adress"]}, *renamed]
    r = httpx.put(base + f"/pipelines/cols-a-{RUN}", headers={**dev, "If-Match": '"1"'}, json=doc)
    [error] = _refusal(r)
    assert error["loc"] == ["body", "transforms", 0] and "transform '#0 (trim)'" in error["msg"]
    assert "'adress'" in error["msg"] and "转换“#0 (trim)”" in error["msg_zh"]


def test_a_column_named_by_its_chinese_name_is_refused_with_the_field_name_the_rows_carry(api, pg_url, table):
    base, dev = api
    rules = [{"id": "xm", "kind": "required", "fields": ["姓名"]}]
    r = httpx.post(base + "/pipelines", headers=dev, json=_pipeline(f"cols-zh-{RUN}", _pg_source(pg_url), rules=rules))
    [error] = _refusal(r)
    chinese = field_names(["姓名"])["姓名"]
    assert f"the source column '姓名' is the field '{chinese}' in the rows" in error["msg"]
    rules[0]["fields"] = [chinese]
    r = httpx.post(base + "/pipelines", headers=dev, json=_pipeline(f"cols-zh-{RUN}", _pg_source(pg_url), rules=rules))
    assert r.status_code == 201, r.text


def test_the_registry_subject_of_the_topic_is_used_when_it_has_a_schema(api, stack_settings):
    base, dev = api
    # a source the API may not connect to: its columns are known only from the registry
    source = {
        "kind": "relational.timestamp",
        "config": {
            "url": "postgresql+psycopg://etl:pw@db.example:5432/civil",
            "system": f"colsreg{RUN}",
            "table": "licences",
            "timestamp_column": "updated_at",
        },
    }
    rules = [{"id": "total_range", "kind": "range", "fields": ["total"], "min": 0}]
    doc = _pipeline(f"cols-reg-{RUN}", source, rules=rules)
    r = httpx.post(base + "/pipelines", headers=dev, json=doc)
    assert r.status_code == 201, r.text  # nothing to read the columns from: not refused

    topic = PipelineSpec.model_validate(doc).topics(stack_settings)["source"]
    columns = [ColumnSpec("code", String(), False, True), ColumnSpec("amount", Numeric(12, 2), True, False)]
    _register(stack_settings, topic, f"colsreg{RUN}", "licences", columns)
    doc["name"] = f"cols-reg2-{RUN}"
    [error] = _refusal(httpx.post(base + "/pipelines", headers=dev, json=doc))
    assert "'total'" in error["msg"] and "its columns: code, amount" in error["msg"]
    assert f"registry subject {value_subject(topic)}" in error["msg"]
    doc["rules"][0]["fields"] = ["amount"]
    assert httpx.post(base + "/pipelines", headers=dev, json=doc).status_code == 201


def test_a_file_connector_is_checked_against_its_declared_columns(api):
    base, dev = api
    source = {
        "kind": "files",
        "config": {
            "system": f"colsfile{RUN}",
            "table": "enterprises",
            "store": {"kind": "local", "root": "inbox", "pattern": "*.csv"},
            "columns": [
                {"name": "统一社会信用代码", "key": True},
                {"name": "amount", "type": "decimal", "precision": 12, "scale": 2},
            ],
        },
    }
    rules = [{"id": "capital", "kind": "range", "fields": ["registered_capital"], "min": 0}]
    [error] = _refusal(
        httpx.post(base + "/pipelines", headers=dev, json=_pipeline(f"cols-f-{RUN}", source, rules=rules))
    )
    code = field_names(["统一社会信用代码"])["统一社会信用代码"]
    assert f"its columns: {code} (统一社会信用代码), amount" in error["msg"]
    assert "the file connector's declared columns" in error["msg"] and "文件连接器声明的列" in error["msg_zh"]


def test_a_runner_connector_document_with_rules_is_checked_against_its_input_topic(api, stack_settings):
    base, dev = api
    topic = f"huiliu.colsrun{RUN}.orders"
    columns = [ColumnSpec("id", Integer(), False, True), ColumnSpec("status", String(), True, False)]
    _register(stack_settings, topic, f"colsrun{RUN}", "orders", columns)
    config = {
        "connector.class": "runner.lean",
        "topics": [topic],
        "rules": [{"id": "state_known", "kind": "in_set", "fields": ["state"], "values": ["open", "closed"]}],
    }
    r = httpx.post(base + "/connectors", headers=dev, json={"name": f"cols-runner-{RUN}", "config": config})
    assert r.status_code == 400, r.text
    [error] = r.json()["errors"]
    assert error["field"] == "rules.0"
    assert (
        "rule 'state_known'" in error["message"] and "'state'" in error["message"] and "id, status" in error["message"]
    )
    config["rules"][0]["fields"] = ["status"]
    r = httpx.post(base + "/connectors", headers=dev, json={"name": f"cols-runner-{RUN}", "config": config})
    assert r.status_code == 201, r.text


# -- issue 21: a ClickHouse sink's key columns nullable in the schema are refused at save ----------


def test_a_clickhouse_key_that_is_nullable_or_not_a_column_is_refused_when_the_pipeline_is_saved(api, pg_url, table):
    base, dev = api
    doc = _pipeline(f"cols-key-{RUN}", _pg_source(pg_url))
    doc["sink"]["config"]["key"] = ["phone"]  # a nullable column
    r = httpx.post(base + "/pipelines", headers=dev, json=doc)
    assert r.status_code == 422, r.text
    [error] = r.json()["detail"]
    assert error["type"] == "invalid_key" and error["loc"] == ["body", "sink", "config", "key"]
    assert "key column(s) phone are nullable in table" in error["msg"] and "ClickHouse cannot order" in error["msg"]
    assert "主键列 phone" in error["msg_zh"] and "可为空" in error["msg_zh"]

    doc["sink"]["config"]["key"] = ["idd"]
    [error] = httpx.post(base + "/pipelines", headers=dev, json=doc).json()["detail"]
    assert "key field(s) idd are not columns" in error["msg"]

    doc["sink"]["config"]["key"] = ["id"]  # NOT NULL (the primary key)
    assert httpx.post(base + "/pipelines", headers=dev, json=doc).status_code == 201
    del doc["sink"]["config"]["key"]  # default: the table's primary key
    doc["name"] = f"cols-key2-{RUN}"
    assert httpx.post(base + "/pipelines", headers=dev, json=doc).status_code == 201


def test_a_clickhouse_sink_connector_with_a_nullable_key_is_refused_on_save(api, stack_settings):
    base, dev = api
    topic = f"huiliu.colskey{RUN}.permits"
    columns = [ColumnSpec("id", Integer(), False, True), ColumnSpec("holder", String(), True, False)]
    _register(stack_settings, topic, f"colskey{RUN}", "permits", columns)
    config = {
        "connector.class": "clickhouse",
        "topics": [topic + ".clean"],  # the clean topic carries its source topic's schema
        "url": stack_settings.clickhouse_url,
        "table": f"colskey_{RUN}",
        "key": ["holder"],
    }
    r = httpx.post(base + "/connectors", headers=dev, json={"name": f"cols-sink-{RUN}", "config": config})
    assert r.status_code == 400, r.text
    [error] = r.json()["errors"]
    assert error["field"] == "key" and "holder are nullable" in error["message"]
    assert f"registry subject {value_subject(topic)}" in error["message"]
    config["key"] = ["id"]
    r = httpx.post(base + "/connectors", headers=dev, json={"name": f"cols-sink-{RUN}", "config": config})
    assert r.status_code == 201, r.text
