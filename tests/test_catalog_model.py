"""The catalogue's pure parts: URNs (OpenLineage naming, refusals), shape diffs, business patches."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from schemas.catalog import BadUrn, parse_urn
from schemas.catalog.business import BusinessPatch, apply
from schemas.catalog.diff import diff_shapes, is_empty, summary
from schemas.catalog.urns import relational_urn, system_urn, topic_urn


def test_urns_follow_openlineage_naming():
    assert relational_urn("postgresql+psycopg://u:p@db.local/civil", "public", "people") == (
        "hl:dataset:postgres://db.local:5432/civil.public.people"
    )
    assert (
        relational_urn("mysql+pymysql://root@127.0.0.1:3307/hr", None, "staff")
        == "hl:dataset:mysql://127.0.0.1:3307/hr.staff"
    )
    assert relational_urn("sqlite:////tmp/a.db", "main", "t") == "hl:dataset:sqlite:///tmp/a.db.main.t"
    assert (
        topic_urn("127.0.0.1:19092,other:1", "huiliu.civil.public.people")
        == "hl:dataset:kafka://127.0.0.1:19092/huiliu.civil.public.people"
    )
    assert system_urn("postgres://h:5432", "civil") == "hl:system:postgres://h:5432/civil"
    for urn in (
        "hl:dataset:postgres://db.local:5432/civil.public.people",
        "hl:dataset:sqlite:///tmp/a.db.main.t",
        "hl:system:kafka://127.0.0.1:19092",
        "hl:job:huiliu/people-runner",
    ):
        assert str(parse_urn(urn)) == urn


@pytest.mark.parametrize(
    "urn",
    [
        "",
        "x" * 1001,
        "urn:li:dataset:x",
        "hl:table:postgres://h/x",
        "hl:dataset:gopher://h/x",
        "hl:dataset:postgres://h:1/",
        "hl:dataset:postgres://h h/x",
        "hl:job:other/x",
        "hl:dataset:kafka://h:1/a\x00b",
    ],
)
def test_malformed_urns_are_refused_with_a_reason(urn):
    with pytest.raises(BadUrn) as err:
        parse_urn(urn)
    assert str(err.value) and (len(urn) < 5 or urn not in str(err.value))


def _f(name, type_, pos, **kw):
    return {
        "name": name,
        "type": type_,
        "position": pos,
        "nullable": True,
        "key": False,
        "default": None,
        "comment": None,
        **kw,
    }


def test_diff_names_every_kind_of_change():
    old = {
        "kind": "table",
        "fields": [_f("id", "INT", 1, key=True), _f("nm", "TEXT", 2), _f("age", "INT", 3, comment="年龄")],
        "properties": {},
    }
    new = {
        "kind": "table",
        "fields": [
            _f("id", "BIGINT", 1, key=True),
            _f("name", "TEXT", 2),
            _f("age", "INT", 3, comment="年龄（岁）"),
            _f("phone", "TEXT", 4),
        ],
        "properties": {"comment": "人口"},
    }
    d = diff_shapes(old, new)
    assert d["renamed"] == [{"from": "nm", "to": "name", "position": 2}]
    assert d["added"] == [{"name": "phone", "type": "TEXT", "position": 4}] and d["removed"] == []
    assert d["type_changed"] == [{"name": "id", "from": "INT", "to": "BIGINT"}]
    assert d["comment_changed"] == [{"name": "age", "from": "年龄", "to": "年龄（岁）"}]
    assert d["properties_changed"] == [{"name": "comment", "from": None, "to": "人口"}]
    assert summary(d) == "1 added, 1 renamed, 1 type changed, 1 comment changed, 1 properties changed"
    assert is_empty(diff_shapes(new, new))


def test_business_patch_refuses_unknown_keys_and_values_and_merges_fields():
    with pytest.raises(ValidationError):
        BusinessPatch.model_validate({"colour": "red"})
    with pytest.raises(ValidationError):
        BusinessPatch.model_validate({"classification": "top-secret"})
    with pytest.raises(ValidationError):
        BusinessPatch.model_validate({"fields": {"a": {"owner": "x"}}})
    current = apply(
        {}, BusinessPatch.model_validate({"owner": "a", "fields": {"id": {"description": "key", "tags": ["k"]}}})
    )
    after = apply(current, BusinessPatch.model_validate({"owner": None, "fields": {"id": {"tags": None}}}))
    assert after == {"fields": {"id": {"description": "key"}}}


def test_search_on_a_sqlite_control_db_uses_fts5_trigrams(tmp_path):
    from sqlalchemy import create_engine

    from deploy.migrate import upgrade
    from schemas.catalog import CatalogStore, DatasetInfo, FieldInfo, Harvest, SystemInfo
    from schemas.catalog.search import BadQuery, search

    engine = create_engine(f"sqlite:///{tmp_path / 'control.db'}")
    upgrade(engine)
    fields = [FieldInfo("sfzh", "VARCHAR(18)", 1, comment="公民身份证号码"), FieldInfo("xm", "TEXT", 2, comment="姓名")]
    others = [FieldInfo(f"c{i}", "INT", i + 1, comment=f"指标{i}") for i in range(50)]
    harvest = Harvest(
        SystemInfo("hl:system:sqlite:///x.db", "civil", "sqlite"),
        [
            DatasetInfo("hl:dataset:sqlite:///x.db.main.people", "main.people", "table", fields, {"comment": "人口"}),
            DatasetInfo("hl:dataset:sqlite:///x.db.main.stats", "main.stats", "table", others),
        ],
    )
    CatalogStore(engine).record(harvest, "a")
    hits = search(engine, {"a"}, "身份证")
    assert [(h["kind"], h["field"]) for h in hits["items"]] == [("field", "sfzh")]
    assert search(engine, {"b"}, "身份证")["items"] == []
    assert search(engine, {"a"}, "xm")["items"][0]["field"] == "xm"  # short words: LIKE
    assert search(engine, {"a"}, "指标4")["total"] == 1 + 10  # 指标4 and 指标40..49
    with pytest.raises(BadQuery):
        search(engine, None, " ")


def test_an_envelope_topics_fields_are_its_rows_with_source_names_kept_and_a_file_infers_them():
    """`after` names `before`'s row type: the topic's fields are the row's, Chinese names mapped to
    pinyin with the source name as comment; a file source without declared columns takes them back."""
    import sqlalchemy as sa

    from schemas.catalog.files import harvest_file_source
    from schemas.catalog.topics import row_fields
    from schemas.envelope import envelope_schema
    from schemas.sqltypes import ColumnSpec

    schema = envelope_schema(
        "civil", "public", "人口", [ColumnSpec("编号", sa.Integer(), False, True), ColumnSpec("姓名", sa.String())]
    )
    fields = row_fields(schema)
    assert [(f.name, f.type, f.nullable, f.comment) for f in fields] == [
        ("bianhao", "int", False, "编号"),
        ("xingming", "string", True, "姓名"),
    ]
    store = {"kind": "sftp", "host": "files.gov", "port": 2222, "root": "/in/people", "pattern": "*.csv"}
    harvest = harvest_file_source(store, "人口", "civil", [], fields, None, "csv")
    [ds] = harvest.datasets
    assert ds.urn == "hl:dataset:sftp://files.gov:2222/in/people/*.csv" and ds.kind == "files"
    assert [(f.name, f.type) for f in ds.fields] == [("编号", "int"), ("姓名", "string")]
    assert ds.properties["columns_from"] == "inferred" and harvest.system.urn == "hl:system:sftp://files.gov:2222"


def test_a_custom_snapshot_query_gets_column_lineage_parsed_from_its_sql(tmp_path):
    """sqlglot reads the SELECT: IDENTITY, TRANSFORMATION, AGGREGATION per result column, and the
    columns that shape the rows (WHERE, JOIN, GROUP BY) as INDIRECT edges; unqualified columns go
    to the table the catalogue says has them."""
    from types import SimpleNamespace

    from api.metadata.lineage import connector_edges
    from deploy.control import engine_for
    from deploy.settings import Settings
    from schemas.catalog import CatalogStore, DatasetInfo, FieldInfo, Harvest, SystemInfo

    settings = Settings(state_dir=tmp_path, kafka_bootstrap="127.0.0.1:9092")
    store = CatalogStore(engine_for(settings.resolved_control_db_url))
    ns, url = "postgres://db:5432", "postgresql+psycopg://u@db:5432/civil"
    person = [FieldInfo(n, "text", i + 1) for i, n in enumerate(("id", "name", "age"))]
    household = [FieldInfo(n, "text", i + 1) for i, n in enumerate(("hid", "head_id", "district"))]
    store.record(
        Harvest(
            SystemInfo(f"hl:system:{ns}/civil", "civil", "postgres"),
            [
                DatasetInfo(f"hl:dataset:{ns}/civil.public.person", "public.person", "table", person),
                DatasetInfo(f"hl:dataset:{ns}/civil.public.household", "public.household", "table", household),
            ],
        ),
        "",
    )
    sql = (
        "SELECT p.id, upper(name) AS name, count(hid) AS households FROM person p "
        "JOIN household h ON h.head_id = p.id WHERE age > 18 GROUP BY p.id, name"
    )
    record = SimpleNamespace(
        name="adults",
        plugin="relational.snapshot",
        config={"url": url, "system": "civil", "queries": [{"name": "adults", "sql": sql, "key": ["id"]}]},
    )
    edges = connector_edges(record, settings, store, "")
    topic = "hl:dataset:kafka://127.0.0.1:9092/huiliu.civil.default.adults"  # topic_name: no schema part
    person_urn, household_urn = f"hl:dataset:{ns}/civil.public.person", f"hl:dataset:{ns}/civil.public.household"
    assert {(e.source, e.target) for e in edges if e.source_field is None} == {
        (person_urn, topic),
        (household_urn, topic),
    }
    direct = {
        (e.source.rsplit(".", 1)[1], e.source_field, e.target_field, e.transformation["subtype"])
        for e in edges
        if e.source_field and e.transformation["type"] == "DIRECT"
    }
    assert direct == {
        ("person", "id", "id", "IDENTITY"),
        ("person", "name", "name", "TRANSFORMATION"),
        ("household", "hid", "households", "AGGREGATION"),
    }
    shaping = {
        (e.source.rsplit(".", 1)[1], e.source_field, e.transformation["subtype"])
        for e in edges
        if e.source_field and e.target_field == "households" and e.transformation["type"] == "INDIRECT"
    }
    assert shaping == {
        ("person", "age", "FILTER"),
        ("person", "id", "GROUP_BY"),
        ("person", "name", "GROUP_BY"),
        ("household", "head_id", "JOIN"),
        ("person", "id", "JOIN"),
    }
    record.config["queries"][0]["sql"] = "SELEC nonsense"
    assert connector_edges(record, settings, store, "") == []  # unreadable SQL: no guessed lineage
