"""Sensitive-data detection (issue 17): the validators go past the shape (GB 11643 check digit,
GB 32100 check character, Luhn, real IP addresses), a field is proposed only when most of its
samples match, and a column of random digits proposes nothing. The integration tests at the end
scan a ClickHouse table through the real API and confirm a proposal into the catalogue."""

from __future__ import annotations

import json
import random
import uuid

import pytest

from quality_stream.standards.credit_code import CREDIT_CHARS, credit_check_char
from streams.sensitive import detect_field
from streams.sensitive.validators import (
    address,
    bank_card,
    chinese_name,
    citizen_id,
    email,
    ip_address,
    landline,
    licence_plate,
    luhn,
    mobile,
    social_credit_code,
)
from tests.api_process import api_client  # noqa: F401  (fixture)
from tests.support.sensitive import drop_table, make_id, people_table


def make_card(rng: random.Random) -> str:
    body = "622202" + "".join(rng.choice("0123456789") for _ in range(12))
    return next(body + d for d in "0123456789" if luhn(body + d))


def make_credit(rng: random.Random) -> str:
    body = "91" + "370102" + "".join(rng.choice(CREDIT_CHARS) for _ in range(9))
    return body + credit_check_char(body)


def test_citizen_id_needs_the_check_digit_and_a_birth_date():
    assert citizen_id("11010519491231002X") and citizen_id("11010519491231002x")
    assert not citizen_id("110105194912310021")  # shape right, check digit wrong
    assert not citizen_id("110105194913310020")  # month 13
    assert not citizen_id("11010519491231002")  # 17 characters


def test_bank_card_luhn_and_credit_code_check_character():
    rng = random.Random(7)
    card = make_card(rng)
    assert bank_card(card) and bank_card(f"{card[:4]} {card[4:8]} {card[8:12]} {card[12:]}")
    wrong = card[:-1] + str((int(card[-1]) + 1) % 10)
    assert not bank_card(wrong)
    assert not bank_card("0000000000000000")  # passes Luhn, is nobody's card
    code = make_credit(rng)
    assert social_credit_code(code) and social_credit_code("91350100M000100Y43")
    assert not social_credit_code(code[:-1] + ("0" if code[-1] != "0" else "1"))
    assert not social_credit_code("91350100M000100Y4O")  # O is not in the GB 32100 alphabet


def test_contacts_names_addresses_plates_ips():
    assert mobile("13800000001") and mobile("+86 13800000001") and not mobile("12800000001")
    assert landline("0531-88888888") and landline("010 62345678") and not landline("88888888")
    assert email("zhang.san@example.com.cn") and not email("zhang.san@") and not email("a@b")
    assert chinese_name("张三") and chinese_name("欧阳娜娜") and chinese_name("买买提·艾力")
    assert not chinese_name("数据中心") and not chinese_name("张") and not chinese_name("zhang san")
    assert address("山东省济南市历下区泉城路1号") and address("北京市朝阳区建国路88号3单元")
    assert not address("山东省") and not address("泉城路")
    assert licence_plate("鲁A12345") and licence_plate("粤BD12345") and licence_plate("京A1234学")
    assert not licence_plate("鲁I12345") and not licence_plate("AB12345")
    assert ip_address("192.168.1.10") and ip_address("2001:db8::1")
    assert not ip_address("1.2.3") and not ip_address("300.1.1.1") and not ip_address("12345")


def test_a_column_is_proposed_with_evidence_and_masked_examples():
    rng = random.Random(11)
    ids = [make_id(rng) for _ in range(200)] + [None, ""]
    found = detect_field("id_number", ids)
    assert (found.kind, found.classification, found.masking) == ("citizen_id", "secret", "id_number")
    assert found.ratio == 1.0 and found.sampled == 200 and found.matched == 200
    assert len(found.examples) == 3 and all("*" in e and e not in ids for e in found.examples)
    phones = [f"1{rng.choice('3456789')}{rng.randint(0, 10**9 - 1):09d}" for _ in range(95)] + ["unknown"] * 5
    found = detect_field("phone", phones)
    assert (found.kind, found.ratio, found.classification) == ("mobile", 0.95, "sensitive")
    assert all(e[3:7] == "****" for e in found.examples)
    cards = detect_field("card", [make_card(rng) for _ in range(50)])
    assert cards.kind == "bank_card" and cards.classification == "secret"


def test_random_digits_and_plain_text_propose_nothing():
    rng = random.Random(3)
    for width in (11, 16, 18, 19):
        digits = ["".join(rng.choice("0123456789") for _ in range(width)) for _ in range(1000)]
        assert detect_field(f"digits{width}", digits) is None, width
    assert detect_field("notes", ["已办结", "待审核", "退回补正"] * 50) is None
    # one stray ID number in a notes column is no ID column
    assert detect_field("notes", ["已办结"] * 20 + [make_id(rng)]) is None
    assert detect_field("few", [make_id(rng), make_id(rng)]) is None  # too few values to tell


# -- through the API, over a ClickHouse table in the catalogue ------------------------------------
RUN = uuid.uuid4().hex[:6]
TENANT = f"sdt{RUN}"
TABLE = f"sd_people_{RUN}"
PASSWORD = "Quartz-Lumen-7741-Tarn"


@pytest.fixture(scope="module")
def steward(api):
    import httpx

    name = f"{TENANT}-steward"
    r = api.post("/users", json={"username": name, "password": PASSWORD, "tenant": TENANT, "roles": ["admin"]})
    assert r.status_code == 201, r.text
    token = api.post("/auth/token", data={"username": name, "password": PASSWORD}).json()["access_token"]
    with httpx.Client(base_url=str(api.base_url), headers={"Authorization": f"Bearer {token}"}, timeout=60) as c:
        yield c


@pytest.fixture(scope="module")
def demo_table(stack_settings, steward) -> str:
    """Demo-like people beside a column of random digits (tests/support/sensitive.py), catalogued;
    a steward has tagged `phone` already (a confirmation keeps other tags)."""
    urn = people_table(stack_settings, TENANT, TABLE)
    r = steward.patch(f"/metadata/datasets/{urn}", json={"fields": {"phone": {"tags": ["contact"]}}})
    assert r.status_code == 200, r.text
    yield urn
    drop_table(stack_settings, TABLE)


def test_scan_finds_ids_and_phones_and_nothing_in_random_digits(steward, demo_table):
    r = steward.post("/detection/scan", json={"dataset": demo_table, "limit": 500})
    assert r.status_code == 200, r.text
    body = r.json()
    found = {f["field"]: f for f in body["findings"]}
    assert body["source"] == "clickhouse" and body["sampled"] == 300
    assert {k: found[k]["kind"] for k in found} == {
        "id_number": "citizen_id",
        "phone": "mobile",
        "name": "chinese_name",
        "address": "address",
    }
    assert found["id_number"]["ratio"] == 1.0 and found["id_number"]["classification"] == "secret"
    assert found["phone"]["masking"] == "phone" and found["phone"]["current_classification"] is None
    assert all("*" in e for f in found.values() for e in f["examples"])
    assert {"serial", "status", "id"} <= set(body["clear"])  # random 18-digit strings are no IDs
    # the clear values never come back
    sample = json.dumps(body, ensure_ascii=False)
    assert not any(citizen_id(w.strip('"')) for w in sample.replace(",", " ").split())


def test_confirm_updates_the_catalogue_classification(steward, demo_table):
    r = steward.post(
        "/detection/confirm",
        json={
            "dataset": demo_table,
            "fields": {
                "id_number": {"classification": "secret", "kind": "citizen_id"},
                "phone": {"classification": "sensitive", "kind": "mobile"},
            },
        },
    )
    assert r.status_code == 200, r.text
    ds = steward.get(f"/metadata/datasets/{demo_table}").json()
    business = {f["name"]: f["business"] for f in ds["fields"]}
    assert business["id_number"]["classification"] == "secret"
    assert business["phone"] == {"classification": "sensitive", "tags": ["contact", "sensitive:mobile"]}
    again = steward.post("/detection/scan", json={"dataset": demo_table, "fields": ["phone"]}).json()
    assert again["findings"][0]["current_classification"] == "sensitive"


@pytest.mark.parametrize(
    "path, body, status",
    [
        ("/detection/scan", {"dataset": "not-a-urn"}, 422),
        ("/detection/scan", {"dataset": "hl:dataset:postgres://h:5432/db.s.nothing"}, 404),
        ("/detection/scan", {"dataset": "DEMO", "fields": ["nope"]}, 422),
        ("/detection/scan", {"dataset": "DEMO", "limit": 5}, 422),
        ("/detection/confirm", {"dataset": "DEMO", "fields": {"nope": {"classification": "secret"}}}, 422),
        ("/detection/confirm", {"dataset": "DEMO", "fields": {"phone": {"classification": "top"}}}, 422),
    ],
)
def test_bad_requests_answer_a_clear_4xx(steward, demo_table, path, body, status):
    body = {**body, "dataset": demo_table} if body.get("dataset") == "DEMO" else body
    r = steward.post(path, json=body)
    assert r.status_code == status, r.text


def test_scan_of_a_topic_reads_its_change_events(stack_settings, steward):
    """A clean topic's change events (Avro, through the registry), catalogued by the topic harvest:
    the row images after each change are sampled; a delete's empty image is skipped."""
    from confluent_kafka import Producer

    from deploy.control import engine_for
    from schemas.catalog.store import CatalogStore
    from schemas.catalog.topics import harvest_topics
    from schemas.naming import value_subject
    from schemas.serde import WireCodec

    topic = f"clean.sd_people_{RUN}"
    row = {
        "type": "record",
        "name": "Row",
        "fields": [{"name": n, "type": "string"} for n in ("name", "id_number", "mobile", "note")],
    }
    envelope = {
        "type": "record",
        "name": "Envelope",
        "fields": [
            {"name": "before", "type": ["null", row], "default": None},
            {"name": "after", "type": ["null", "Row"], "default": None},
            {"name": "op", "type": "string"},
        ],
    }
    codec = WireCodec(stack_settings.schema_registry_url)
    schema_id = codec.register(value_subject(topic), envelope)
    producer = Producer({"bootstrap.servers": stack_settings.kafka_bootstrap})
    rng = random.Random(9)
    for i in range(60):
        image = {"name": "李四", "id_number": make_id(rng), "mobile": f"139{i:08d}", "note": str(rng.random())}
        value = {"before": None, "after": image, "op": "c"} if i % 10 else {"before": image, "after": None, "op": "d"}
        producer.produce(topic, key=str(i).encode(), value=codec.encode(schema_id, value))
    assert producer.flush(30) == 0
    harvest = harvest_topics(stack_settings.kafka_bootstrap, stack_settings.schema_registry_url, [topic])
    CatalogStore(engine_for(stack_settings.resolved_control_db_url)).record(harvest, TENANT)
    urn = harvest.datasets[0].urn
    r = steward.post("/detection/scan", json={"dataset": urn, "limit": 100})
    assert r.status_code == 200, r.text
    body = r.json()
    found = {f["field"]: f["kind"] for f in body["findings"]}
    assert body["source"] == "topic" and body["sampled"] == 54  # 60 events, 6 deletes
    assert found == {"name": "chinese_name", "id_number": "citizen_id", "mobile": "mobile"}
    assert body["clear"] == ["note"]
