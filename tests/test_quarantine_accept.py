"""Accepting quarantined records as they are (a waiver, issue 16), through HTTP: records the runner's
own processor quarantined (a rule failed) are accepted with a reason; their original events go on to
the clean topic through the pipeline's transforms, with their keys and sequences, and nothing else
does; the audit log keeps who, why and which records. Refused with a clear 4xx: no data:view, a
record not there, a record whose original event cannot be decoded (nothing published then), a
missing reason."""

from __future__ import annotations

import uuid

import httpx
import pytest
import sqlalchemy.types as sa

from schemas.envelope import envelope_schema, make_event
from schemas.naming import clean_topic, quarantine_topic, value_subject
from schemas.serde import WireCodec
from schemas.sqltypes import ColumnSpec
from streams.processor import BatchProcessor, RawMessage
from tests.api_process import api_client  # noqa: F401  (fixture)
from tests.sources import raw_messages

RUN = uuid.uuid4().hex[:6]
TENANT = f"qa{RUN}"
PIPELINE = f"qa-pipe-{RUN}"
PASSWORD = "Waiver-Quartz-4417-Fern"
TRANSFORMS = [{"kind": "trim", "fields": ["name"], "case": "upper"}]
RULES = [{"id": "code_required", "kind": "required", "fields": ["code"]}]
COLUMNS = [
    ColumnSpec("id", sa.BigInteger(), False, True),
    ColumnSpec("code", sa.String(10)),
    ColumnSpec("name", sa.String(40)),
]


def _user(api, name: str, roles: list[str]) -> httpx.Client:
    r = api.post("/users", json={"username": name, "password": PASSWORD, "tenant": TENANT, "roles": roles})
    assert r.status_code == 201, r.text
    token = api.post("/auth/token", data={"username": name, "password": PASSWORD}).json()["access_token"]
    return httpx.Client(base_url=str(api.base_url), headers={"Authorization": f"Bearer {token}"}, timeout=60)


def _source(seq: int) -> dict:
    meta = {"system": f"qa{RUN}", "database": None, "schema": "public", "table": f"qa_people_{RUN}"}
    return {**meta, "connector": "t", "position": "{}", "sequence": seq, "snapshot": False}


@pytest.fixture(scope="module")
def quarantined(api, stack_settings, pg_url):
    """A pipeline of the tenant, and its quarantine as the runner's processor writes it: rows 1-3 fail
    code_required, row 4 passes (its clean output is not published: only what is accepted gets there)."""
    source = {"url": pg_url, "system": f"qa{RUN}", "db_schema": "public", "table": f"qa_people_{RUN}"}
    document = {
        "name": PIPELINE,
        "tenant": TENANT,
        "source": {"kind": "relational.timestamp", "config": {**source, "timestamp_column": "id"}},
        "transforms": TRANSFORMS,
        "rules": RULES,
        "sink": {"kind": "clickhouse", "config": {"table": f"qa_{RUN}"}},
    }
    r = api.post("/pipelines", json=document)
    assert r.status_code == 201, r.text
    raw = f"huiliu.qa{RUN}.public.qa_people_{RUN}"
    codec = WireCodec(stack_settings.schema_registry_url)
    schema_id = codec.register(value_subject(raw), envelope_schema(f"qa{RUN}", "public", f"qa_people_{RUN}", COLUMNS))
    rows = [{"id": i, "code": None if i < 4 else "A", "name": f" 张{i} zh "} for i in (1, 2, 3, 4)]
    batch = [
        RawMessage(
            raw, 0, i, str(row["id"]).encode(), codec.encode(schema_id, make_event("c", None, row, 0, _source(10 + i)))
        )
        for i, row in enumerate(rows)
    ]
    batch.append(RawMessage(raw, 0, 4, b"9", b"\x00not avro"))  # undecodable: quarantined with no event
    processor = BatchProcessor(codec, TRANSFORMS, RULES, stage=f"runner:{PIPELINE}")
    result = processor.process(batch)
    from confluent_kafka import Producer

    producer = Producer({"bootstrap.servers": stack_settings.kafka_bootstrap})
    for out in result.outputs:
        if out.topic == quarantine_topic(raw):
            producer.produce(out.topic, key=out.key, value=out.value)
    assert producer.flush(30) == 0
    return {"raw": raw, "codec": codec}


def test_accepted_records_go_on_to_the_clean_topic_through_the_transforms(api, quarantined, stack_settings):
    steward = _user(api, f"{TENANT}-steward", ["admin"])
    role = {"name": f"{TENANT}-looker", "tenant": TENANT, "permissions": ["quality:manage", "pipeline:view"]}
    assert api.post("/roles", json=role).status_code == 201
    looker = _user(api, f"{TENANT}-looker", [role["name"]])  # no data:view
    page = steward.get("/quality/quarantine", params={"pipeline": PIPELINE}).json()
    assert page["total"] == 4, page
    by_id = {(i["event"] or {}).get("after", {}).get("id"): i for i in page["items"]}
    chosen = [{"partition": by_id[n]["partition"], "offset": by_id[n]["offset"]} for n in (1, 3)]
    body = {"pipeline": PIPELINE, "records": chosen, "reason": "源系统确认编码可为空 / code may be empty at source"}

    undecodable = by_id[None]
    refusals = [
        (looker, body, 403),  # accepting data needs data:view
        (steward, {**body, "records": [{"partition": 0, "offset": 99_999}]}, 404),
        (steward, {**body, "pipeline": "no-such-pipeline"}, 404),
        (steward, {**body, "reason": ""}, 422),
        (steward, {**body, "records": []}, 422),
        (
            steward,
            {**body, "records": chosen + [{"partition": undecodable["partition"], "offset": undecodable["offset"]}]},
            422,
        ),
    ]
    for who, bad, status in refusals:
        got = who.post("/quality/quarantine/accept", json=bad)
        assert got.status_code == status, (bad, got.status_code, got.text)
    last = got.json()["detail"]
    assert "无法解码" in last["message_zh"] and last["record"] == [undecodable["partition"], undecodable["offset"]]

    r = steward.post("/quality/quarantine/accept", json=body)
    assert r.status_code == 200, r.text
    assert r.json()["accepted"] == 2 and r.json()["topic"] == clean_topic(quarantined["raw"])
    # only the two accepted events: the refused request published nothing
    got = raw_messages(stack_settings, clean_topic(quarantined["raw"]), 3, timeout=4)
    assert sorted(k for k, _ in got) == [b"1", b"3"]
    events = sorted((quarantined["codec"].decode(v)[1] for _, v in got), key=lambda e: e["after"]["id"])
    assert [e["after"] for e in events] == [
        {"id": 1, "code": None, "name": "张1 ZH"},
        {"id": 3, "code": None, "name": "张3 ZH"},
    ]
    assert [e["source"]["sequence"] for e in events] == [10, 12]  # the original versions: a later change still wins

    audit = api.get("/audit", params={"action": "quality.quarantine.accept", "limit": 20}).json()
    done = [e for e in audit if e["outcome"] == "success" and e["actor"] == f"{TENANT}-steward"]
    assert len(done) == 1
    assert "源系统确认" in done[0]["detail"]["reason"] and len(done[0]["detail"]["records"]) == 2
    for c in (steward, looker):
        c.close()
