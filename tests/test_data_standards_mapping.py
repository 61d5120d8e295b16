"""Catalogue fields mapped to data elements through HTTP (issue 16): suggestions from names and
comments (pinyin field names included), confirmed by a person or mapped by hand, conformance per
dataset and per system, unmapping, bad input answering 4xx, another tenant's dataset unknown; and
standards becoming rules: a mapping, a newly published element version, a retirement and an
unmapping each give the pipeline reading the table a new version with the generated rules; published
code sets land in ClickHouse, joined by a dashboard query."""

from __future__ import annotations

import uuid
from urllib.parse import quote

import httpx
import pytest
from sqlalchemy import create_engine, text

from sinks.clickhouse import client_from_url
from tests.api_process import api_client, wait_for  # noqa: F401  (fixture)

RUN = uuid.uuid4().hex[:6]
SCHEMA = f"stdmap{RUN}"
TA, TB = f"sma{RUN}", f"smb{RUN}"
PASSWORD = "Quartz-Lumen-7741-Tarn"


def _user(api, name: str, tenant: str, roles: list[str]) -> httpx.Client:
    r = api.post("/users", json={"username": name, "password": PASSWORD, "tenant": tenant, "roles": roles})
    assert r.status_code == 201, r.text
    token = api.post("/auth/token", data={"username": name, "password": PASSWORD}).json()["access_token"]
    return httpx.Client(base_url=str(api.base_url), headers={"Authorization": f"Bearer {token}"}, timeout=60)


@pytest.fixture(scope="module")
def source(pg_url):
    engine = create_engine(pg_url)
    with engine.begin() as c:
        c.execute(text(f"CREATE SCHEMA {SCHEMA}"))
        c.execute(
            text(
                f"CREATE TABLE {SCHEMA}.people (id bigint PRIMARY KEY, xingming text, sfzh varchar(18), "
                "xb varchar(1), income numeric(12,2), updated_at timestamp NOT NULL DEFAULT now())"
            )
        )
        c.execute(text(f"COMMENT ON COLUMN {SCHEMA}.people.sfzh IS '公民身份证号码'"))
        c.execute(text(f"COMMENT ON COLUMN {SCHEMA}.people.xb IS '性别'"))
    yield engine
    with engine.begin() as c:
        c.execute(text(f"DROP SCHEMA {SCHEMA} CASCADE"))
    engine.dispose()


@pytest.fixture(scope="module")
def world(api, source, pg_url):
    people = {
        "author": _user(api, f"{TA}-author", TA, ["developer"]),
        "reviewer": _user(api, f"{TA}-reviewer", TA, ["admin"]),
        "other": _user(api, f"{TB}-admin", TB, ["admin"]),
    }
    connector = f"stdmap{RUN}"
    config = {
        "connector.class": "relational.snapshot",
        "url": pg_url,
        "system": f"reg{RUN}",
        "tables": {"schemas": [SCHEMA], "include": [f"{SCHEMA}.*"]},
    }
    r = api.post("/connectors", json={"name": connector, "config": config, "initial_state": "STOPPED", "tenant": TA})
    assert r.status_code == 201, r.text
    job_id = people["author"].post("/metadata/harvest", json={"connectors": [connector]}).json()["job_id"]
    wait_for(lambda: api.get(f"/jobs/{job_id}").json().get("state") == "succeeded", 120)
    items = people["author"].get("/metadata/datasets", params={"limit": 1000}).json()["items"]
    dataset = next(d for d in items if d["name"].endswith(f"{SCHEMA}.people"))
    author, reviewer = people["author"], people["reviewer"]
    assert author.post("/standards/national/gb2261_1/install").status_code == 201
    elements = [
        {"code": "full_name", "name_zh": "姓名", "name_en": "name", "length": 50},
        {
            "code": "citizen_id",
            "name_zh": "公民身份号码",
            "synonyms": ["身份证号"],
            "length": 18,
            "format": r"\d{17}[\dX]",
        },
        {"code": "gender_code", "name_zh": "性别代码", "length": 1, "code_set": "gb2261_1"},
    ]
    for e in elements:
        assert author.post("/standards/elements", json=e).status_code == 201
    items = [{"kind": "code_set", "code": "gb2261_1"}] + [{"kind": "element", "code": e["code"]} for e in elements]
    rid = author.post("/standards/reviews", json={"items": items}).json()["id"]
    decision = reviewer.post(f"/standards/reviews/{rid}/decision", json={"approve": True})
    assert decision.status_code == 200, decision.text
    yield {**people, "dataset": dataset, "api": api, "pg_url": pg_url, "decision": decision.json()}
    for c in people.values():
        c.close()


def test_suggestions_from_names_and_comments(world):
    r = world["author"].get("/standards/suggestions", params={"dataset": world["dataset"]["urn"]})
    assert r.status_code == 200, r.text
    best = {f["field"]: (f["suggestions"][0]["element"] if f["suggestions"] else None) for f in r.json()["fields"]}
    assert best == {
        "id": None,
        "xingming": "full_name",  # pinyin of 姓名
        "sfzh": "citizen_id",  # comment 公民身份证号码 ~ 公民身份号码
        "xb": "gender_code",  # comment 性别 inside 性别代码
        "income": None,
        "updated_at": None,
    }
    sfzh = next(f for f in r.json()["fields"] if f["field"] == "sfzh")["suggestions"][0]
    assert "公民身份证号码" in sfzh["why"] and 0.7 <= sfzh["score"] <= 1


def test_mapping_by_hand_and_by_suggestion_and_conformance(world):
    author, urn = world["author"], world["dataset"]["urn"]
    r = author.post(
        "/standards/mappings",
        json={"field_urn": f"{urn}#sfzh", "element": "citizen_id", "method": "suggested", "score": 0.92},
    )
    assert r.status_code == 200, r.text
    assert (r.json()["method"], r.json()["mapped_by"]) == ("suggested", f"{TA}-author")
    for field, element in (("xingming", "full_name"), ("xb", "gender_code")):
        assert (
            author.post("/standards/mappings", json={"field_urn": f"{urn}#{field}", "element": element}).status_code
            == 200
        )
    got = {m["field"]: m["element"] for m in author.get("/standards/mappings", params={"dataset": urn}).json()}
    assert got == {"sfzh": "citizen_id", "xingming": "full_name", "xb": "gender_code"}
    after = author.get("/standards/suggestions", params={"dataset": urn}).json()
    assert {f["field"] for f in after["fields"]} == {"id", "income", "updated_at"}  # mapped ones are not suggested

    c = author.get("/standards/conformance", params={"dataset": urn}).json()
    assert (c["fields"], c["mapped"], c["ratio"]) == (6, 3, 0.5)
    assert c["datasets"][0]["unmapped"] == ["id", "income", "updated_at"]
    by_system = author.get("/standards/conformance", params={"system": world["dataset"]["system"]}).json()
    assert by_system["mapped"] == 3 and by_system["fields"] >= 6

    r = author.delete("/standards/mappings", params={"field_urn": f"{urn}#xingming"})
    assert r.status_code == 200 and r.json()["element"] == "full_name"
    assert author.delete("/standards/mappings", params={"field_urn": f"{urn}#xingming"}).status_code == 404
    assert author.get("/standards/conformance", params={"dataset": urn}).json()["mapped"] == 2
    audit = world["api"].get("/audit", params={"action": "standards.mapping.*", "limit": 100}).json()
    assert {e["action"] for e in audit if e["actor"] == f"{TA}-author"} == {
        "standards.mapping.put",
        "standards.mapping.remove",
    }


def test_bad_mappings_answer_4xx(world):
    author, urn = world["author"], world["dataset"]["urn"]
    cases = [
        ({"field_urn": urn, "element": "full_name"}, 422, "字段 URN"),
        ({"field_urn": f"{urn}#nosuch", "element": "full_name"}, 422, "nosuch"),
        ({"field_urn": f"{urn}#xingming", "element": "no_such_element"}, 422, "没有数据元"),
        ({"field_urn": "hl:dataset:kafka://127.0.0.1:9/ghost#x", "element": "full_name"}, 404, "目录中没有该数据集"),
        ({"field_urn": "nonsense#x", "element": "full_name"}, 422, "field_urn"),
    ]
    for body, status, words in cases:
        r = author.post("/standards/mappings", json=body)
        assert r.status_code == status and words in r.text, (body, r.status_code, r.text)
    assert author.get("/standards/conformance").status_code == 422
    assert author.get("/standards/conformance", params={"system": urn}).status_code == 422


def test_another_tenant_cannot_map_or_read_them(world):
    other, urn = world["other"], world["dataset"]["urn"]
    assert other.post("/standards/mappings", json={"field_urn": f"{urn}#sfzh", "element": "x"}).status_code == 404
    assert other.get("/standards/mappings", params={"dataset": urn}).status_code == 404
    assert other.get("/standards/mappings").json() == []
    assert other.get("/standards/suggestions", params={"dataset": urn}).status_code == 404
    assert other.delete("/standards/mappings", params={"field_urn": f"{urn}#sfzh"}).status_code == 404
    assert world["author"].get(f"/metadata/datasets/{quote(urn, safe='')}").status_code == 200


def _rules(client, name: str) -> dict[str, dict]:
    return {r["id"]: r for r in client.get(f"/pipelines/{name}").json()["document"]["rules"]}


def test_standards_become_rules_in_a_new_pipeline_version(world):
    api, author, reviewer, urn = world["api"], world["author"], world["reviewer"], world["dataset"]["urn"]
    name = f"stdpipe{RUN}"
    document = {
        "name": name,
        "tenant": TA,
        "source": {
            "kind": "relational.timestamp",
            "config": {
                "url": world["pg_url"],
                "system": f"reg{RUN}",
                "db_schema": SCHEMA,
                "table": "people",
                "timestamp_column": "updated_at",
            },
        },
        "rules": [{"id": "id_required", "kind": "required", "fields": ["id"]}],
        "sink": {"kind": "clickhouse", "config": {"table": f"std_people_{RUN}", "key": ["id"]}},
    }
    r = api.post("/pipelines", json=document)
    assert r.status_code == 201, r.text

    # a mapping: the pipeline reading the table gets every mapped field's rules as version 2
    r = author.post("/standards/mappings", json={"field_urn": f"{urn}#xingming", "element": "full_name"})
    assert r.status_code == 200, r.text
    assert r.json()["pipelines"] == [{"pipeline": name, "version": 2}]
    rules = _rules(author, name)
    assert sorted(rules) == [
        "id_required",  # the hand-written rule stays
        "std.citizen_id.format",
        "std.citizen_id.length",
        "std.full_name.length",
        "std.gender_code.code_set",
        "std.gender_code.length",
    ]
    code_set = rules["std.gender_code.code_set"]  # GB/T 2261.1, followed from its compacted topic
    assert (code_set["kind"], code_set["table"], code_set["fields"]) == ("reference", "std_codes.gb2261_1", ["xb"])
    lookups = author.get(f"/pipelines/{name}").json()["document"]["runner"]["lookups"]
    assert lookups == {"std_codes.gb2261_1": f"_huiliu.codes.{TA}.gb2261_1"}
    fmt = rules["std.citizen_id.format"]
    assert (fmt["kind"], fmt["pattern"], fmt["fullmatch"], fmt["fields"]) == ("regex", r"\d{17}[\dX]", True, ["sfzh"])
    assert "性别代码" in rules["std.gender_code.code_set"]["message"]
    history = author.get(f"/pipelines/{name}/versions").json()
    assert history[-1]["version"] == 2 and history[-1]["message"].startswith("data standards:")
    assert history[-1]["author"] == f"{TA}-author"
    diff = author.get(f"/pipelines/{name}/diff", params={"from": 1, "to": 2})
    assert diff.status_code == 200 and "std.full_name.length" in diff.text

    # the same mapping again changes nothing: no version
    r = author.post("/standards/mappings", json={"field_urn": f"{urn}#xingming", "element": "full_name"})
    assert r.json()["pipelines"] == []

    # a new published version of an element: the rules follow
    assert author.patch("/standards/elements/gender_code", json={"length": 2}).json()["version"] == 2
    rid = author.post("/standards/reviews", json={"items": [{"kind": "element", "code": "gender_code"}]}).json()["id"]
    r = reviewer.post(f"/standards/reviews/{rid}/decision", json={"approve": True})
    assert r.json()["pipelines"] == [{"pipeline": name, "version": 3}]
    assert _rules(author, name)["std.gender_code.length"]["max"] == 2

    # retiring an element and unmapping a field remove their rules the same way
    r = reviewer.post("/standards/elements/full_name/retire")
    assert r.json()["pipelines"] == [{"pipeline": name, "version": 4}]
    assert not any(i.startswith("std.full_name.") for i in _rules(author, name))
    r = author.delete("/standards/mappings", params={"field_urn": f"{urn}#sfzh"})
    assert r.json()["pipelines"] == [{"pipeline": name, "version": 5}]
    assert sorted(_rules(author, name)) == ["id_required", "std.gender_code.code_set", "std.gender_code.length"]
    audit = api.get("/audit", params={"action": "standards.mapping.remove", "limit": 20}).json()
    assert any(e["detail"].get("pipelines") == [{"pipeline": name, "version": 5}] for e in audit)


def test_published_code_sets_land_in_clickhouse(world, stack_settings):
    author, reviewer = world["author"], world["reviewer"]
    table = f"std_codes_{TA}_gb2261_1"
    topic = f"_huiliu.codes.{TA}.gb2261_1"
    assert world["decision"]["code_sets"] == [
        {"code": "gb2261_1", "version": 1, "table": table, "rows": 4, "topic": topic}
    ]
    client = client_from_url(stack_settings.clickhouse_url)
    try:
        current = f"SELECT code, label FROM {table} FINAL WHERE _deleted = 0 ORDER BY code"
        assert client.execute(current) == [("0", "未知的性别"), ("1", "男性"), ("2", "女性"), ("9", "未说明的性别")]

        # a new version drops a code and relabels one: the table follows
        items = [{"code": "1", "label": "男"}, {"code": "2", "label": "女性"}, {"code": "9", "label": "未说明的性别"}]
        assert author.patch("/standards/code-sets/gb2261_1", json={"items": items}).json()["version"] == 2
        rid = author.post("/standards/reviews", json={"items": [{"kind": "code_set", "code": "gb2261_1"}]}).json()["id"]
        r = reviewer.post(f"/standards/reviews/{rid}/decision", json={"approve": True})
        assert r.json()["code_sets"] == [{"code": "gb2261_1", "version": 2, "table": table, "rows": 3, "topic": topic}]
        assert r.json()["pipelines"] == []  # the pipeline follows the topic: no new version needed
        assert client.execute(current) == [("1", "男"), ("2", "女性"), ("9", "未说明的性别")]

        # the documented join: a dashboard shows labels, not codes
        facts = f"std_people_{RUN}"
        client.execute(f"CREATE TABLE {facts} (id UInt32, xb String) ENGINE = MergeTree ORDER BY id")
        client.execute(f"INSERT INTO {facts} VALUES", [(1, "1"), (2, "2"), (3, "0")])
        joined = client.execute(
            f"SELECT p.id, d.label FROM {facts} AS p LEFT JOIN "
            f"(SELECT code, label FROM {table} FINAL WHERE _deleted = 0) AS d ON p.xb = d.code ORDER BY p.id"
        )
        assert joined == [(1, "男"), (2, "女性"), (3, "")]
        client.execute(f"DROP TABLE {facts}")
    finally:
        client.disconnect()


def _clickhouse_dataset(settings, table: str, fields: list[tuple[str, str]]) -> str:
    """A ClickHouse table in tenant TA's catalogue (what a sink's harvest records)."""
    from deploy.control import engine_for
    from schemas.catalog.model import DatasetInfo, FieldInfo, Harvest, SystemInfo
    from schemas.catalog.store import CatalogStore
    from schemas.catalog.urns import dataset_urn, system_urn

    ns = f"clickhouse://127.0.0.1:{settings.clickhouse_url.split('@')[-1].split('/')[0].split(':')[1]}"
    urn = dataset_urn(ns, f"default.{table}")
    info = [FieldInfo(name, ctype, i + 1) for i, (name, ctype) in enumerate(fields)]
    CatalogStore(engine_for(settings.resolved_control_db_url)).record(
        Harvest(
            SystemInfo(system_urn(ns, "default"), "clickhouse", "clickhouse"),
            [DatasetInfo(urn, table, "sink_table", info)],
        ),
        TA,
    )
    return urn


def test_suggestions_from_profiled_values_state_their_evidence(world, stack_settings):
    """Columns whose names say nothing (c1, c2) are suggested elements from their values: 98% of the
    1,000 sampled c1 values are GB/T 2260 codes, every c2 value a GB/T 3304 code; a person confirms."""
    author = world["author"]
    table = f"stdval_{RUN}"
    ch = client_from_url(stack_settings.clickhouse_url)
    ch.execute(f"CREATE TABLE {table} (id UInt32, c1 String, c2 Nullable(String)) ENGINE = MergeTree ORDER BY id")
    divisions = ["110000", "370100", "440300", "510100"]  # 北京市, 济南市, 深圳市, 成都市 in GB/T 2260
    rows = [
        (i, "999999" if i % 50 == 0 else divisions[i % 4], None if i % 10 == 0 else f"{i % 56 + 1:02d}")
        for i in range(1000)
    ]
    ch.execute(f"INSERT INTO {table} VALUES", rows)
    try:
        urn = _clickhouse_dataset(
            stack_settings, table, [("id", "UInt32"), ("c1", "String"), ("c2", "Nullable(String)")]
        )
        for code in ("gb2260", "gb3304"):
            assert author.post(f"/standards/national/{code}/install").status_code == 201
        for e in (
            {"code": "division_v", "name_zh": "行政区划", "length": 6, "format": r"\d{6}", "code_set": "gb2260"},
            {"code": "ethnic_v", "name_zh": "民族", "length": 2, "code_set": "gb3304"},
        ):
            assert author.post("/standards/elements", json=e).status_code == 201

        by_name = author.get("/standards/suggestions", params={"dataset": urn}).json()
        assert all(f["suggestions"] == [] for f in by_name["fields"])  # c1, c2 say nothing by name
        r = author.get("/standards/suggestions", params={"dataset": urn, "values": "true"})
        assert r.status_code == 200, r.text
        found = {f["field"]: f["suggestions"] for f in r.json()["fields"]}
        (c1,) = [s for s in found["c1"] if s["element"] == "division_v"]
        assert c1["basis"] == ["values"] and c1["score"] == 0.98 and found["c1"][0] == c1
        checks = {c["check"]: c for c in c1["evidence"]}
        assert (checks["code_set"]["matched"], checks["code_set"]["sampled"]) == (980, 1000)
        assert checks["code_set"]["why"].startswith("98% of 1,000 sampled values are 中华人民共和国行政区划代码")
        assert checks["code_set"]["why_zh"].startswith("抽样 1,000 个值中 98% 是")
        assert checks["format"]["ratio"] == 1.0 and checks["length"]["ratio"] == 1.0
        (c2,) = found["c2"]
        assert (c2["element"], c2["score"], c2["evidence"][0]["sampled"]) == ("ethnic_v", 1.0, 900)  # NULLs left out
        assert found["id"] == []

        confirm = {"field_urn": f"{urn}#c1", "element": "division_v", "method": "suggested", "score": c1["score"]}
        assert author.post("/standards/mappings", json=confirm).status_code == 200
        again = author.get("/standards/suggestions", params={"dataset": urn, "values": "true"}).json()
        assert {f["field"] for f in again["fields"]} == {"id", "c2"}  # mapped: no longer suggested
        not_ch = author.get("/standards/suggestions", params={"dataset": world["dataset"]["urn"], "values": "true"})
        assert not_ch.status_code == 422 and not_ch.json()["detail"]["field"] == "values"
    finally:
        ch.execute(f"DROP TABLE IF EXISTS {table}")
        ch.disconnect()
