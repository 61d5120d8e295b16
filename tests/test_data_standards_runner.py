"""Standards become rules, end to end (issue 16): a PostgreSQL table harvested into the catalogue,
GB/T 2261.1 installed and a gender element referencing it published after review by a second
person, the table's gender field mapped to the element -> the pipeline reading the table gets a new
version with the generated rules -> deployed, its runner (a real worker process) quarantines the
row whose value is not in the code set, naming the generated rule, and ClickHouse holds the others;
GET /quality/quarantine shows that record with its violation (values masked without data:view),
filtered by rule and time, and answers 404 to another tenant; a bulk replay of the rule's quarantine
is quarantined again by the same rules, and a repaired replay (the value corrected) lands in
ClickHouse, FINAL showing the row once, corrected; both audited. A new code set version admitting
the code reaches the running runner through the code set's compacted topic: a new row with it
lands in ClickHouse with no new pipeline version and no redeploy."""

from __future__ import annotations

import time
import uuid

import httpx
import pytest
from confluent_kafka import Consumer
from sqlalchemy import create_engine, text

from schemas.naming import quarantine_topic, topic_name
from schemas.serde import WireCodec
from sinks.clickhouse import client_from_url
from tests.api_process import wait_for
from tests.connect_cluster import (
    api_and_worker,
    own_control_db,  # noqa: F401 - a fixture: stack_settings with its own control DB
    wait_until,
)

RUN = uuid.uuid4().hex[:6]
TENANT = f"srun{RUN}"
NAME = f"stdrun-{RUN}"
TABLE = f"stdrun_{RUN}"
CH_TABLE = f"stdrun_ch_{RUN}"
SYSTEM = f"reg{RUN}"
PASSWORD = "Quartz-Lumen-7741-Tarn"
ROWS = [(1, "1"), (2, "2"), (3, "7"), (4, "9")]  # 7 is no GB/T 2261.1 gender code


@pytest.fixture(scope="module")
def cluster(stack_settings, tmp_path_factory, pg_url):
    engine = create_engine(pg_url)
    with engine.begin() as conn:
        conn.execute(
            text(f"CREATE TABLE {TABLE} (id integer PRIMARY KEY, xb varchar(1), updated_at timestamp NOT NULL)")
        )
        conn.execute(text(f"COMMENT ON COLUMN {TABLE}.xb IS '性别'"))
        for i, xb in ROWS:
            conn.execute(text(f"INSERT INTO {TABLE} VALUES (:i, :x, clock_timestamp())"), {"i": i, "x": xb})
    logs = tmp_path_factory.mktemp("stdrun-logs")
    with api_and_worker(stack_settings, logs, f"worker-stdrun-{RUN}") as client:
        yield client, logs
        client.post(f"/pipelines/{NAME}/undeploy")
    with engine.begin() as conn:
        conn.execute(text(f"DROP TABLE IF EXISTS {TABLE}"))
    engine.dispose()


def _user(api: httpx.Client, name: str, roles: list[str]) -> httpx.Client:
    r = api.post("/users", json={"username": name, "password": PASSWORD, "tenant": TENANT, "roles": roles})
    assert r.status_code == 201, r.text
    token = api.post("/auth/token", data={"username": name, "password": PASSWORD}).json()["access_token"]
    return httpx.Client(base_url=str(api.base_url), headers={"Authorization": f"Bearer {token}"}, timeout=60)


def _quarantined(settings, topic: str) -> list[dict]:
    codec = WireCodec(settings.schema_registry_url)
    consumer = Consumer(
        {
            "bootstrap.servers": settings.kafka_bootstrap,
            "group.id": f"stdrun-quarantine-{RUN}",
            "auto.offset.reset": "earliest",
            "session.timeout.ms": 6000,
        }
    )
    consumer.subscribe([topic])
    records, deadline = [], time.time() + 60
    try:
        while time.time() < deadline:
            msg = consumer.poll(1)
            if msg is None:
                if records:
                    break
                continue
            if not msg.error():
                records.append(codec.decode(msg.value())[1])
    finally:
        consumer.close()
    return records


def _clickhouse_ids(settings) -> set[int]:
    client = client_from_url(settings.clickhouse_url)
    try:
        if not client.execute("EXISTS TABLE " + CH_TABLE)[0][0]:
            return set()
        return {r[0] for r in client.execute(f"SELECT id FROM {CH_TABLE} FINAL WHERE _deleted = 0")}
    finally:
        client.disconnect()


def _clickhouse_rows(settings) -> dict[int, list[tuple]]:
    """id -> the rows FINAL shows for it (one, when versions collapse as they should)."""
    client = client_from_url(settings.clickhouse_url)
    try:
        out: dict[int, list[tuple]] = {}
        for i, xb in client.execute(f"SELECT id, xb FROM {CH_TABLE} FINAL WHERE _deleted = 0"):
            out.setdefault(i, []).append((xb,))
        return out
    finally:
        client.disconnect()


def test_a_published_element_quarantines_a_value_outside_its_code_set(cluster, stack_settings, pg_url):
    api, logs = cluster
    author, reviewer = _user(api, f"{TENANT}-author", ["developer"]), _user(api, f"{TENANT}-reviewer", ["admin"])
    source = {"url": pg_url, "system": SYSTEM, "db_schema": "public", "table": TABLE, "timestamp_column": "updated_at"}
    document = {
        "name": NAME,
        "tenant": TENANT,
        "source": {"kind": "relational.timestamp", "config": source},
        "rules": [{"id": "id_required", "kind": "required", "fields": ["id"]}],
        "sink": {"kind": "clickhouse", "config": {"table": CH_TABLE}},
    }
    assert api.post("/pipelines", json=document).status_code == 201

    # the table in the catalogue (through a stopped connector of the tenant)
    tables = {"schemas": ["public"], "include": [f"public.{TABLE}"]}  # its own system: another raw topic
    config = {"connector.class": "relational.snapshot", "url": pg_url, "system": f"{SYSTEM}c", "tables": tables}
    r = api.post(
        "/connectors", json={"name": f"cat-{RUN}", "config": config, "initial_state": "STOPPED", "tenant": TENANT}
    )
    assert r.status_code == 201, r.text
    job = author.post("/metadata/harvest", json={"connectors": [f"cat-{RUN}"]}).json()["job_id"]
    wait_for(lambda: api.get(f"/jobs/{job}").json().get("state") == "succeeded", 120)
    dataset = next(d for d in author.get("/metadata/datasets").json()["items"] if d["name"].endswith(TABLE))

    # the standard: GB/T 2261.1 and an element using it, published by a second person
    assert author.post("/standards/national/gb2261_1/install").status_code == 201
    element = {"code": "gender_code", "name_zh": "性别代码", "length": 1, "code_set": "gb2261_1"}
    assert author.post("/standards/elements", json=element).status_code == 201
    items = [{"kind": "code_set", "code": "gb2261_1"}, {"kind": "element", "code": "gender_code"}]
    rid = author.post("/standards/reviews", json={"items": items}).json()["id"]
    assert reviewer.post(f"/standards/reviews/{rid}/decision", json={"approve": True}).status_code == 200

    # the field mapped (the suggestion's choice, confirmed): the pipeline gets version 2
    suggested = author.get("/standards/suggestions", params={"dataset": dataset["urn"]}).json()
    xb = next(f for f in suggested["fields"] if f["field"] == "xb")
    assert xb["suggestions"][0]["element"] == "gender_code"
    body = {
        "field_urn": xb["field_urn"],
        "element": "gender_code",
        "method": "suggested",
        "score": xb["suggestions"][0]["score"],
    }
    r = author.post("/standards/mappings", json=body)
    assert r.status_code == 200 and r.json()["pipelines"] == [{"pipeline": NAME, "version": 2}], r.text

    # deployed like any change: the runner quarantines 7, ClickHouse holds the rest
    r = api.post(f"/pipelines/{NAME}/deploy")
    assert r.status_code == 200 and r.json()["version"] == 2, r.text
    try:
        wait_until(
            lambda: _clickhouse_ids(stack_settings) == {1, 2, 4} or None, 150, interval=1.0, message="valid rows"
        )
    except AssertionError:
        raise AssertionError(f"{_clickhouse_ids(stack_settings)}\n{(logs / 'worker.log').read_text()[-4000:]}")
    raw = topic_name(stack_settings.topic_prefix, SYSTEM, "public", TABLE)
    records = _quarantined(stack_settings, quarantine_topic(raw))
    assert len(records) == 1, records
    assert [v["rule_id"] for v in records[0]["violations"]] == ["std.gender_code.code_set"]
    assert '"xb": "7"' in records[0]["original_json"] or '"xb":"7"' in records[0]["original_json"]

    # conformance: the field is mapped, and 3 of its 4 values passed the element's rules
    def values():
        c = author.get("/standards/conformance", params={"dataset": dataset["urn"]}).json()["datasets"][0]
        return c if c["values"] and c["values"][0]["checked"] == 4 else None

    conf = wait_until(values, 30, message="runner counters")
    assert (conf["mapped"], conf["fields"]) == (1, 3)
    assert conf["values"] == [
        {
            "pipeline": NAME,
            "element": "gender_code",
            "checked": 4,
            "failed": {"std.gender_code.code_set": 1},
            "pass_ratio": 0.75,
        }
    ]

    # browsing the quarantine through the API: the violation and the original row (masked without data:view)
    page = author.get("/quality/quarantine", params={"pipeline": NAME}).json()
    assert (page["total"], page["masked"], page["partial"]) == (1, False, False), page
    item = page["items"][0]
    assert [v["rule_id"] for v in item["violations"]] == ["std.gender_code.code_set"]
    assert item["event"]["after"]["xb"] == "7" and item["event"]["after"]["id"] == 3
    assert item["original_topic"] == raw
    rule = {"pipeline": NAME, "rule": "std.gender_code.code_set"}
    assert author.get("/quality/quarantine", params=rule).json()["total"] == 1
    assert author.get("/quality/quarantine", params={**rule, "rule": "id_required"}).json()["total"] == 0
    future = {"pipeline": NAME, "since": "2999-01-01T00:00:00Z"}
    assert author.get("/quality/quarantine", params=future).json()["total"] == 0
    role = {"name": f"{TENANT}-steward", "tenant": TENANT, "permissions": ["quality:manage"]}
    assert api.post("/roles", json=role).status_code == 201
    steward = _user(api, f"{TENANT}-steward", [role["name"]])
    page = steward.get("/quality/quarantine", params={"pipeline": NAME}).json()
    assert page["masked"] is True and page["items"][0]["event"]["after"] == {k: "****" for k in item["event"]["after"]}
    assert author.get("/quality/quarantine", params={"pipeline": "no-such-pipeline"}).status_code == 404
    assert reviewer.get("/quality/quarantine", params={"pipeline": "bad name!"}).status_code == 422
    r = api.post(
        "/users", json={"username": f"x{RUN}-admin", "password": PASSWORD, "tenant": f"x{RUN}", "roles": ["admin"]}
    )
    assert r.status_code == 201, r.text
    token = api.post("/auth/token", data={"username": f"x{RUN}-admin", "password": PASSWORD}).json()["access_token"]
    with httpx.Client(base_url=str(api.base_url), headers={"Authorization": f"Bearer {token}"}, timeout=60) as other:
        assert other.get("/quality/quarantine", params={"pipeline": NAME}).status_code == 404  # another tenant's

    # bulk replay of the rule's quarantine (no correction): the same rules quarantine it again
    bulk = {"pipeline": NAME, "rule": "std.gender_code.code_set", "reason": "规则修正后重放 / replay after a fix"}
    r = author.post("/quality/quarantine/replay", json=bulk)
    assert r.status_code == 200 and r.json()["replayed"] == 1, r.text
    wait_until(
        lambda: author.get("/quality/quarantine", params={"pipeline": NAME}).json()["total"] == 2 or None,
        90,
        interval=1.0,
        message="the replayed event quarantined again",
    )

    # repair: the steward corrects the value and replays it; ClickHouse FINAL shows the row once, corrected
    position = {"partition": item["partition"], "offset": item["offset"]}
    repair = {"pipeline": NAME, "records": [position], "set": {"xb": "1"}, "reason": "核实为男性 / checked at source"}
    refusals = [
        (steward, repair, 403),  # correcting data needs data:view
        (author, {**repair, "set": {"nosuch": "1"}}, 422),
        (author, {**repair, "set": {"xb": ["not", "a", "string"]}}, 422),
        (author, {**repair, "records": [{"partition": 0, "offset": 999999}]}, 404),
        (author, {**repair, "rule": "x"}, 422),  # records or rule, not both
        (author, {**repair, "pipeline": "no-such-pipeline"}, 404),
    ]
    for who, body, status in refusals:
        got = who.post("/quality/quarantine/replay", json=body)
        assert got.status_code == status, (body, got.status_code, got.text)
    r = author.post("/quality/quarantine/replay", json=repair)
    assert r.status_code == 200 and r.json()["replayed"] == 1, r.text
    assert r.json()["topic"] == raw
    try:
        wait_until(
            lambda: _clickhouse_rows(stack_settings).get(3) == [("1",)] or None,
            120,
            interval=1.0,
            message="repaired row",
        )
    except AssertionError:
        raise AssertionError(f"{_clickhouse_rows(stack_settings)}\n{(logs / 'worker.log').read_text()[-4000:]}")
    assert set(_clickhouse_rows(stack_settings)) == {1, 2, 3, 4}
    audit = api.get("/audit", params={"action": "quality.quarantine.replay", "limit": 50}).json()
    done = [e for e in audit if e["outcome"] == "success" and e["actor"] == f"{TENANT}-author"]
    assert len(done) == 2 and done[0]["detail"]["fields"] == ["xb"] and "核实" in done[0]["detail"]["reason"]

    # a new code set version reaches the running runner through its topic: no pipeline version, no redeploy
    items = author.get("/standards/code-sets/gb2261_1").json()["items"] + [{"code": "7", "label": "本测试增加的代码"}]
    assert author.patch("/standards/code-sets/gb2261_1", json={"items": items}).json()["version"] == 2
    rid = author.post("/standards/reviews", json={"items": [{"kind": "code_set", "code": "gb2261_1"}]}).json()["id"]
    r = reviewer.post(f"/standards/reviews/{rid}/decision", json={"approve": True})
    assert r.json()["pipelines"] == [] and r.json()["code_sets"][0]["topic"] == f"_huiliu.codes.{TENANT}.gb2261_1"
    engine = create_engine(pg_url)
    with engine.begin() as conn:
        conn.execute(text(f"INSERT INTO {TABLE} VALUES (5, '7', clock_timestamp())"))
    engine.dispose()
    try:
        wait_until(lambda: 5 in _clickhouse_rows(stack_settings) or None, 120, interval=1.0, message="row 5 passes")
    except AssertionError:
        raise AssertionError(f"{_clickhouse_rows(stack_settings)}\n{(logs / 'worker.log').read_text()[-4000:]}")
    assert api.get(f"/pipelines/{NAME}/deployment").json()["version"] == 2
    for c in (author, reviewer, steward):
        c.close()
