"""Metadata catalogue through HTTP (issue 15): harvest of a real PostgreSQL and MariaDB schema
(comments, keys, views, row estimates) as a job, versions and their diff after ALTER TABLE, an
unchanged re-harvest adding no version, business metadata edits (audited), tenants seeing only
their own systems, and bad input answering 4xx."""

from __future__ import annotations

import csv
import io
import time
import uuid
from urllib.parse import quote

import httpx
import pytest
from sqlalchemy import create_engine, text

from tests.api_process import api_client, wait_for  # noqa: F401  (fixture)

RUN = uuid.uuid4().hex[:6]
SCHEMA = f"cat{RUN}"
TA, TB = f"cta{RUN}", f"ctb{RUN}"
PASSWORD = "Quartz-Lumen-7741-Tarn"


def _path(urn: str, tail: str = "") -> str:
    return f"/metadata/datasets/{quote(urn, safe='')}{tail}"


@pytest.fixture(scope="module")
def pg_source(pg_url):
    engine = create_engine(pg_url)
    with engine.begin() as c:
        c.execute(text(f"CREATE SCHEMA {SCHEMA}"))
        c.execute(
            text(
                f"CREATE TABLE {SCHEMA}.population (id bigint PRIMARY KEY, citizen_id varchar(18) NOT NULL, "
                "name text, birth date, income numeric(12,2))"
            )
        )
        c.execute(text(f"COMMENT ON TABLE {SCHEMA}.population IS '人口基础信息'"))
        c.execute(text(f"COMMENT ON COLUMN {SCHEMA}.population.citizen_id IS '公民身份证号码'"))
        c.execute(text(f"COMMENT ON COLUMN {SCHEMA}.population.name IS '姓名'"))
        c.execute(text(f"CREATE INDEX ix_pop_name ON {SCHEMA}.population (name)"))
        c.execute(
            text(
                f"INSERT INTO {SCHEMA}.population SELECT g, lpad(g::text, 18, '0'), 'n', NULL, 1 FROM generate_series(1, 500) g"
            )
        )
        c.execute(text(f"ANALYZE {SCHEMA}.population"))
        c.execute(text(f"CREATE VIEW {SCHEMA}.adults AS SELECT id, citizen_id FROM {SCHEMA}.population"))
    yield engine
    engine.dispose()


@pytest.fixture(scope="module")
def maria_source(mysql_url):
    engine = create_engine(mysql_url)
    with engine.begin() as c:
        c.execute(text(f"DROP TABLE IF EXISTS org{RUN}"))
        c.execute(
            text(
                f"CREATE TABLE org{RUN} (code CHAR(18) PRIMARY KEY COMMENT '统一社会信用代码', "
                "title VARCHAR(200) NOT NULL COMMENT '单位名称', founded DATE) COMMENT='法人单位'"
            )
        )
    yield engine
    with engine.begin() as c:
        c.execute(text(f"DROP TABLE IF EXISTS org{RUN}"))
    engine.dispose()


def _connector(api, name: str, config: dict, tenant: str | None = None) -> None:
    body = {"name": name, "config": config, "initial_state": "STOPPED", **({"tenant": tenant} if tenant else {})}
    r = api.post("/connectors", json=body)
    assert r.status_code == 201, r.text


def _harvest(client: httpx.Client, connectors: list[str] | None = None, jobs: httpx.Client | None = None) -> dict:
    """Harvest as `client`; the job is read by `jobs` (a developer lacks jobs:manage; the operator sees it)."""
    r = client.post("/metadata/harvest", json={"connectors": connectors} if connectors else {})
    assert r.status_code == 202, r.text
    job_id = r.json()["job_id"]
    reader = jobs or client
    job = wait_for(
        lambda: (j := reader.get(f"/jobs/{job_id}").json()).get("state") not in ("queued", "running") and j, 120
    )
    assert job["state"] == "succeeded", job
    assert job["progress"] == 100
    return job["result"]


@pytest.fixture(scope="module")
def tenants(api):
    """A developer in each of two tenants (bearer headers)."""
    headers = {}
    for tenant in (TA, TB):
        user = f"{tenant}-dev"
        r = api.post("/users", json={"username": user, "password": PASSWORD, "tenant": tenant, "roles": ["developer"]})
        assert r.status_code == 201, r.text
        token = api.post("/auth/token", data={"username": user, "password": PASSWORD}).json()["access_token"]
        headers[tenant] = {"Authorization": f"Bearer {token}"}
    viewer = f"{TA}-viewer"
    assert (
        api.post(
            "/users", json={"username": viewer, "password": PASSWORD, "tenant": TA, "roles": ["viewer"]}
        ).status_code
        == 201
    )
    token = api.post("/auth/token", data={"username": viewer, "password": PASSWORD}).json()["access_token"]
    headers["viewer"] = {"Authorization": f"Bearer {token}"}
    return headers


@pytest.fixture(scope="module")
def harvested(api, pg_source, maria_source, pg_url, mysql_url, tenants):
    pg_conn, maria_conn = f"catpg{RUN}", f"catmaria{RUN}"
    selection = {"schemas": [SCHEMA], "include": [f"{SCHEMA}.*"]}
    _connector(
        api,
        pg_conn,
        {"connector.class": "relational.snapshot", "url": pg_url, "system": f"civil{RUN}", "tables": selection},
        TA,
    )
    maria_sel = {"include": [f"*.org{RUN}"]}
    _connector(
        api,
        maria_conn,
        {"connector.class": "relational.snapshot", "url": mysql_url, "system": f"org{RUN}", "tables": maria_sel},
        TA,
    )
    client = httpx.Client(base_url=str(api.base_url), headers=tenants[TA], timeout=60)
    result = _harvest(client, [pg_conn, maria_conn], api)
    yield {"client": client, "result": result, "pg": pg_conn, "maria": maria_conn, "api": api}
    client.close()


def _find(client, name: str) -> dict:
    items = client.get("/metadata/datasets", params={"limit": 1000}).json()["items"]
    return next(d for d in items if d["name"].endswith(name))


def test_harvest_reads_postgres_tables_views_comments_keys_and_estimates(harvested):
    client = harvested["client"]
    assert not harvested["result"]["errors"], harvested["result"]
    pop = _find(client, f"{SCHEMA}.population")
    assert pop["urn"].startswith("hl:dataset:postgres://127.0.0.1:5432/") and pop["urn"].endswith(
        f".{SCHEMA}.population"
    )
    assert pop["kind"] == "table" and pop["comment"] == "人口基础信息" and pop["rows"] == 500 and pop["tenant"] == TA
    full = client.get(_path(pop["urn"])).json()
    fields = {f["name"]: f for f in full["fields"]}
    assert list(fields) == ["id", "citizen_id", "name", "birth", "income"]
    assert fields["id"]["key"] and not fields["id"]["nullable"] and fields["id"]["type"] == "BIGINT"
    assert fields["citizen_id"]["comment"] == "公民身份证号码" and fields["citizen_id"]["type"] == "VARCHAR(18)"
    assert fields["income"]["type"] == "NUMERIC(12, 2)"
    assert full["properties"]["primary_key"] == ["id"]
    assert {"name": "ix_pop_name", "columns": ["name"], "unique": False} in full["properties"]["indexes"]
    view = _find(client, f"{SCHEMA}.adults")
    assert view["kind"] == "view"
    systems = {s["urn"]: s for s in client.get("/metadata/systems").json()}
    assert any(
        u.startswith("hl:system:postgres://127.0.0.1:5432/") and s["name"] == f"civil{RUN}" for u, s in systems.items()
    )


def test_harvest_reads_mariadb_comments_and_keys(harvested):
    client = harvested["client"]
    org = _find(client, f"org{RUN}")
    assert org["urn"].startswith("hl:dataset:mysql://127.0.0.1:3306/") and org["comment"] == "法人单位"
    fields = {f["name"]: f for f in client.get(_path(org["urn"])).json()["fields"]}
    assert fields["code"]["key"] and fields["code"]["comment"] == "统一社会信用代码"
    assert fields["title"]["comment"] == "单位名称" and not fields["title"]["nullable"]


def test_alter_table_makes_a_version_with_a_diff_and_unchanged_adds_none(harvested, pg_source):
    client = harvested["client"]
    urn = _find(client, f"{SCHEMA}.population")["urn"]
    again = _harvest(client, [harvested["pg"]], harvested["api"])
    assert all(not o["changed"] and o["new"] == 0 for o in again["harvested"]), again
    assert [v["version"] for v in client.get(_path(urn, "/versions")).json()] == [1]
    with pg_source.begin() as c:
        c.execute(text(f"ALTER TABLE {SCHEMA}.population ADD COLUMN phone varchar(20)"))
        c.execute(text(f"ALTER TABLE {SCHEMA}.population ALTER COLUMN name TYPE varchar(100)"))
        c.execute(text(f"COMMENT ON COLUMN {SCHEMA}.population.name IS '姓名（中文）'"))
        c.execute(text(f"ALTER TABLE {SCHEMA}.population DROP COLUMN birth"))
    changed = _harvest(client, [harvested["pg"]], harvested["api"])
    assert urn in [u for o in changed["harvested"] for u in o["changed"]]
    versions = client.get(_path(urn, "/versions")).json()
    assert [v["version"] for v in versions] == [2, 1]
    d = client.get(_path(urn, "/diff"), params={"from": 1, "to": 2}).json()["diff"]
    assert [a["name"] for a in d["added"]] == ["phone"]
    assert [r["name"] for r in d["removed"]] == ["birth"]
    assert d["type_changed"] == [{"name": "name", "from": "TEXT", "to": "VARCHAR(100)"}]
    assert d["comment_changed"] == [{"name": "name", "from": "姓名", "to": "姓名（中文）"}]
    assert client.get(_path(urn, "/versions/2")).json()["shape"]["fields"][-1]["name"] == "phone"
    assert client.get(_path(urn)).json()["version"] == 2


def test_business_metadata_is_edited_checked_and_audited(harvested, api):
    client = harvested["client"]
    urn = _find(client, f"{SCHEMA}.population")["urn"]
    edit = {
        "description": "户籍人口登记",
        "owner": "civil-affairs",
        "steward": "zhang.san",
        "department": "民政局",
        "tags": ["人口", "core"],
        "classification": "sensitive",
        "lifecycle": "active",
        "fields": {"citizen_id": {"classification": "secret", "description": "18 位身份证号"}},
    }
    r = client.patch(_path(urn), json=edit)
    assert r.status_code == 200, r.text
    got = client.get(_path(urn)).json()
    assert got["business"]["owner"] == "civil-affairs" and got["business"]["classification"] == "sensitive"
    assert next(f for f in got["fields"] if f["name"] == "citizen_id")["business"]["classification"] == "secret"
    assert client.patch(_path(urn), json={"owner": None}).json()["business"].get("owner") is None
    for bad, why in (
        ({"colour": "red"}, "colour"),
        ({"classification": "top"}, "classification"),
        ({"lifecycle": "gone"}, "lifecycle"),
        ({"fields": {"no_such_column": {"description": "x"}}}, "no_such_column"),
    ):
        r = client.patch(_path(urn), json=bad)
        assert r.status_code == 422 and why in r.text, (bad, r.status_code, r.text)
    entries = api.get("/audit", params={"action": "metadata.update", "limit": 50}).json()
    assert any(e["outcome"] == "success" and e["actor"] == f"{TA}-dev" for e in entries)
    assert any(e["outcome"] == "rejected" for e in entries)


def test_tenants_see_only_their_own_catalogue(harvested, tenants):
    urn = _find(harvested["client"], f"{SCHEMA}.population")["urn"]
    with httpx.Client(base_url=str(harvested["client"].base_url), headers=tenants[TB], timeout=30) as other:
        listing = other.get("/metadata/datasets", params={"limit": 1000}).json()
        assert all(d["tenant"] != TA for d in listing["items"])
        assert TA not in other.get("/metadata/systems").text
        assert other.get(_path(urn)).status_code == 404
        assert other.patch(_path(urn), json={"owner": "mallory"}).status_code == 404
        assert other.get(_path(urn, "/versions")).status_code == 404
        r = other.post("/metadata/harvest", json={"connectors": [harvested["pg"]]})
        assert r.status_code == 404
    assert harvested["client"].get(_path(urn)).json()["business"].get("owner") != "mallory"


def test_view_permission_reads_but_cannot_edit_or_harvest(harvested, tenants):
    urn = _find(harvested["client"], f"{SCHEMA}.population")["urn"]
    with httpx.Client(base_url=str(harvested["client"].base_url), headers=tenants["viewer"], timeout=30) as viewer:
        assert viewer.get(_path(urn)).status_code == 200
        assert viewer.patch(_path(urn), json={"owner": "x"}).status_code == 403
        assert viewer.post("/metadata/harvest", json={}).status_code == 403


@pytest.mark.parametrize(
    "urn,status",
    [
        ("hl:dataset:postgres://127.0.0.1:5432/nowhere.public.none", 404),
        ("not-a-urn", 422),
        ("hl:dataset:gopher://host/x", 422),
        ("hl:dataset:postgres://127.0.0.1:5432/", 422),
        ("hl:system:postgres://127.0.0.1:5432", 422),
        ("hl:dataset:kafka://bad host:1/t", 422),
    ],
)
def test_bad_urns_answer_4xx(harvested, urn, status):
    client = harvested["client"]
    for tail in ("", "/versions"):
        r = client.get(_path(urn, tail))
        assert r.status_code == status, (urn, tail, r.text)
        assert urn not in r.text or status == 404 and "no such dataset" in r.text
    assert client.get(_path(_find(client, f"{SCHEMA}.population")["urn"], "/versions/99")).status_code == 404
    assert client.get("/metadata/datasets", params={"system": "nope"}).status_code == 422
    assert client.post("/metadata/harvest", json={"everything": True}).status_code == 422
    assert time.time()  # the answers above were all refusals, none a 500


def test_search_finds_chinese_comments_and_english_names_ranked_with_facets(harvested, tenants):
    client = harvested["client"]
    r = client.get("/metadata/search", params={"q": "身份证"})
    assert r.status_code == 200, r.text
    hits = r.json()
    fields = [h for h in hits["items"] if h["kind"] == "field"]
    assert any(h["field"] == "citizen_id" and h["urn"].endswith(f"{SCHEMA}.population") for h in fields), hits
    assert {"value": "field", "count": len([h for h in hits["items"] if h["kind"] == "field"])} in hits["facets"][
        "kind"
    ] or hits["total"] > len(hits["items"])
    english = client.get("/metadata/search", params={"q": "citizen_id"}).json()["items"]
    assert english[0]["name"] == "citizen_id"  # the exact name ranks first
    both = client.get("/metadata/search", params={"q": "population 人口", "kind": "dataset"}).json()
    assert [h["name"] for h in both["items"]][:1] == [f"{SCHEMA}.population"]
    two = client.get("/metadata/search", params={"q": "姓名", "kind": "field"}).json()["items"]  # bigram index
    assert any(h["field"] == "name" and h["urn"].endswith(f"{SCHEMA}.population") for h in two)
    assert any(
        h["field"] == "id" for h in client.get("/metadata/search", params={"q": "ID", "kind": "field"}).json()["items"]
    )
    # business metadata is searchable too: tags and descriptions
    urn = _find(client, f"{SCHEMA}.population")["urn"]
    assert client.patch(_path(urn), json={"tags": ["户籍"], "description": "household register"}).status_code == 200
    tagged = client.get("/metadata/search", params={"q": "户籍"}).json()
    assert any(h["urn"] == urn and h["kind"] == "dataset" for h in tagged["items"])
    assert {"value": "户籍", "count": 1} in tagged["facets"]["tag"]
    assert client.get("/metadata/search", params={"q": "household"}).json()["items"][0]["urn"] == urn
    with httpx.Client(base_url=str(client.base_url), headers=tenants[TB], timeout=30) as other:
        assert all(h["tenant"] != TA for h in other.get("/metadata/search", params={"q": "身份证"}).json()["items"])
    assert client.get("/metadata/search", params={"q": "  "}).status_code == 422
    assert client.get("/metadata/search", params={"q": 'x" OR "y'}).status_code == 200
    assert client.get("/metadata/search", params={"q": "%_\\"}).status_code == 200


def test_field_lineage_and_impact_follow_the_running_documents(api, pg_source, pg_url, tenants, stack_settings):
    """Source table -> raw topic -> (rename, mask, derive) -> clean topic -> ClickHouse, column by column."""
    with pg_source.begin() as c:
        c.execute(
            text(
                f"CREATE TABLE {SCHEMA}.people (id bigint PRIMARY KEY, name text, phone text, born date, ts timestamp)"
            )
        )
    system = f"lin{RUN}"
    raw = f"huiliu.{system}.{SCHEMA}.people"
    src, runner, sink = f"lsrc{RUN}", f"lrun{RUN}", f"lsink{RUN}"
    _connector(
        api,
        src,
        {
            "connector.class": "relational.timestamp",
            "url": pg_url,
            "system": system,
            "db_schema": SCHEMA,
            "table": "people",
            "timestamp_column": "ts",
        },
        TA,
    )
    transforms = [
        {"kind": "rename", "mapping": {"name": "full_name"}},
        {"kind": "mask", "fields": {"phone": "phone"}},
        {"kind": "derive", "fields": {"year": "year(born)"}},
    ]
    rules = [{"id": "name_required", "kind": "required", "fields": ["full_name"], "severity": "reject"}]
    _connector(
        api, runner, {"connector.class": "runner.lean", "topics": [raw], "transforms": transforms, "rules": rules}, TA
    )
    _connector(
        api,
        sink,
        {
            "connector.class": "clickhouse",
            "topics": [f"{raw}.clean"],
            "table": f"people{RUN}",
            "url": stack_settings.clickhouse_url,
        },
        TA,
    )
    client = httpx.Client(base_url=str(api.base_url), headers=tenants[TA], timeout=60)
    _harvest(client, [src, runner, sink], api)
    table = next(
        d["urn"]
        for d in client.get("/metadata/datasets", params={"limit": 1000}).json()["items"]
        if d["name"] == f"{SCHEMA}.people"
    )
    graph = client.get(f"/lineage/{quote(table, safe='')}", params={"direction": "downstream", "depth": 5}).json()
    names = {n["dataset"].rsplit("/", 1)[-1] for n in graph["nodes"]}
    assert {raw, f"{raw}.clean", f"{raw}.quarantine"} <= names and not graph["partial"]
    fl = client.get(
        f"/lineage/{quote(table, safe='')}",
        params={"level": "field", "field": "name", "direction": "downstream", "depth": 5},
    ).json()
    targets = {e["target"].rsplit("/", 1)[-1]: e["transformation"] for e in fl["edges"]}
    assert f"{raw}#name" in targets and f"{raw}.clean#full_name" in targets
    assert targets[f"{raw}.clean#full_name"]["subtype"] == "IDENTITY"
    phone = client.get(
        f"/lineage/{quote(table, safe='')}",
        params={"level": "field", "field": "phone", "direction": "downstream", "depth": 5},
    ).json()
    masked = [e["transformation"] for e in phone["edges"] if e["target"].endswith(".clean#phone")]
    assert masked and masked[0]["masking"] is True and masked[0]["subtype"] == "TRANSFORMATION"
    born = client.get(
        f"/lineage/{quote(table, safe='')}", params={"level": "field", "field": "born", "direction": "downstream"}
    ).json()
    assert any(e["target"].endswith(".clean#year") for e in born["edges"])
    impact = client.get(f"/impact/{quote(table, safe='')}", params={"field": "name"}).json()
    assert any(f.endswith(".clean#full_name") for f in impact["fields"])
    assert "name_required" in impact["rules"] and f"hl:job:huiliu/{runner}" in impact["jobs"]

    # the same list as CSV (Chinese header, BOM for Excel), inline and as a job's file
    inline = client.get(f"/impact/{quote(table, safe='')}", params={"field": "name", "format": "csv"})
    assert inline.status_code == 200 and inline.headers["x-partial"] == "false"
    rows = list(csv.reader(io.StringIO(inline.content.decode("utf-8-sig"))))
    assert rows[0][:4] == ["跳数", "数据集", "名称", "字段"]
    full_name = next(r for r in rows[1:] if r[1].endswith(".clean") and r[3] == "full_name")
    assert f"hl:job:huiliu/{runner}" in full_name[7] and "name_required" in full_name[8]
    assert {tuple(r[1:4:2]) for r in rows[1:]} == {tuple(f.rsplit("#", 1)) for f in impact["fields"]}
    job = client.post("/impact-exports", json={"urn": table, "field": "name", "lang": "en"})
    assert job.status_code == 202, job.text
    for _ in range(150):  # 409 naming the job's state until its file is there
        exported = client.get(job.json()["download"])
        if exported.status_code != 409:
            break
        time.sleep(0.2)
    assert exported.status_code == 200 and exported.headers["content-type"].startswith("text/csv"), exported.text
    exported_rows = list(csv.reader(io.StringIO(exported.content.decode("utf-8-sig"))))
    assert exported_rows[0][:2] == ["hops", "dataset"] and exported_rows[1:] == rows[1:]
    with httpx.Client(base_url=str(client.base_url), headers=tenants[TB], timeout=30) as other:
        assert other.get(job.json()["download"]).status_code == 404  # another tenant's file: not there
        assert other.post("/impact-exports", json={"urn": table}).status_code == 404
    assert client.post("/impact-exports", json={"urn": "not-a-urn"}).status_code == 422
    assert client.get("/lineage/not-a-urn").status_code == 422
    assert client.get("/impact/hl:dataset:kafka://127.0.0.1:1/none").status_code == 404
    client.close()
