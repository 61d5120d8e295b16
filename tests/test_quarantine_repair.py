"""Quarantine repair and replay (issue 16): a rule's whole quarantine replayed as a message-centre
job, and the console's repair, replay and bulk-replay forms, on an API process of this module's own.

A pipeline's quarantine topic (two partitions) holds 300 records of rule `phone_ok` and 20 of
`name_required`, each with its original change event encoded as the runner keeps it. Through HTTP:
`POST /quality/quarantine/replay-jobs` read 100 records a step succeeds with progress 100, its
result counts 300 replayed of 320 read in several steps, the corrected events are on the raw topic
with their keys and `source.sequence` + 1, and the submission is audited; a field no version of the
row has, a caller without data:view, another tenant's caller and a missing reason are refused at
once. The job cancelled after its first step (the cancel flag set as POST /jobs/{id}/cancel sets it)
ends cancelled with a result saying how many were replayed and where the read stopped. In Chromium:
a steward corrects two chosen records (a text and an integer field) and replays them, is refused an
unknown field in Chinese, accepts one as a waiver (on the clean topic as it was), starts the rule's
bulk replay and sees the job's row, labelled, polled to success; reloading the page a replay or an
accept answered (a redirect to the page, Post/Redirect/Get) sends nothing again. The steward holds
no jobs:manage and still follows and cancels their own job. Pure: the job's percentage, the form's value types, and a label for every job kind."""

from __future__ import annotations

import json
import re
import time
import uuid
from pathlib import Path

import httpx
import pytest
import sqlalchemy.types as sa
from confluent_kafka import Producer

from api.console.pages_quality import corrections, field_types
from api.quality.replay_jobs import KIND, percent
from connectors.pipeline import PipelineSpec
from deploy.kafka import ensure_topics
from deploy.kafka_security import client_config
from schemas.envelope import QUARANTINE_SCHEMA, envelope_schema, make_event
from schemas.naming import clean_topic, quarantine_topic, value_subject
from schemas.serde import WireCodec
from schemas.sqltypes import ColumnSpec
from tests.api_process import start_api, stop_api
from tests.conftest import PORT_BASE
from tests.sources import read_between, topic_ends
from tests.support.console import chromium_browser, new_page, sign_in  # noqa: F401  (fixture `browser`)

RUN = uuid.uuid4().hex[:6]
TENANT, OTHER = f"qr-{RUN}", f"qr-other-{RUN}"
PIPELINE = f"qr-pipe-{RUN}"
STEWARD, CLERK, STRANGER = f"qr-steward-{RUN}", f"qr-clerk-{RUN}", f"qr-stranger-{RUN}"
OPERATOR = f"qr-operator-{RUN}"
PASSWORD = "Quarantine-Repair-Pass-42"
TABLE = f"qr_people_{RUN}"
COLUMNS = [
    ColumnSpec("id", sa.BigInteger(), False, True),
    ColumnSpec("name", sa.String(40)),
    ColumnSpec("phone", sa.String(20)),
    ColumnSpec("age", sa.Integer()),
]
PHONE_BAD, NAME_BAD = 300, 20
FIXED = "13800138000"


# -- pure ---------------------------------------------------------------------------------------


def test_percent_is_the_read_share_and_says_100_only_at_the_end():
    span = {0: (0, 100), 1: (50, 150)}
    assert percent(span, {}) == 0.0
    assert percent(span, {0: 100, 1: 100}) == 75.0
    assert percent(span, {0: 100, 1: 150}) == 99.9  # read to the end: the job itself says 100
    assert percent(span, {0: 400, 1: 10}) == 50.0  # grown since the start / before it: clamped
    assert percent({}, {}) == 99.9


class _Form(dict):
    def getlist(self, key):
        return self.get(key, [])


def test_form_values_are_read_as_the_shown_rows_types():
    items = [
        {"event": {"after": {"id": 1, "name": None, "ok": True, "score": 1.5, "phone": "1"}}},
        {"event": {"after": {"id": 2, "name": "张三", "ok": False, "score": 2.0, "phone": None}}},
    ]
    types = field_types(items)
    assert types == {"id": "int", "name": "str", "ok": "bool", "score": "float", "phone": "str"}
    assert field_types([{"event": {"after": {"id": "****"}}}]) == {"id": "str"}  # masked: no type
    form = _Form(fix_field=["id", "ok", "score", "phone", "", "name"], fix_value=["7", "false", "2.5", "", "x", "李四"])
    assert corrections(form, types) == ({"id": 7, "ok": False, "score": 2.5, "phone": None, "name": "李四"}, None)
    assert corrections(_Form(fix_field=["id"], fix_value=["seven"]), types) == (
        {},
        ("quality.fix_not_int", {"field": "id"}),
    )
    assert corrections(_Form(fix_field=["mobile"], fix_value=["1"]), types) == ({"mobile": "1"}, None)  # the API judges


def test_every_job_kind_the_api_submits_has_a_label_in_both_languages():
    from api.console import i18n
    from api.scheduling.actions import ACTIONS

    root = Path(__file__).resolve().parent.parent / "api"
    kinds = set()
    for path in root.rglob("*.py"):
        if path.parent.name == "jobs":  # the manager itself; its docstring's example kind
            continue
        kinds |= set(re.findall(r"""\.submit\(\s*["']([\w.:-]+)["']""", path.read_text()))
    # KIND is submitted through a name; POST /jobs runs an action under its own name, a
    # schedule as schedule:<action>
    kinds |= {KIND, *ACTIONS}
    assert {"quality.profile", "metadata.harvest", "connector.snapshot", "files.import"} <= kinds
    for lang in ("zh-CN", "en"):
        messages = i18n.catalogue(lang).messages
        missing = sorted(k for k in kinds if f"jobs.kind.{k}" not in messages)
        assert not missing, (lang, missing)
        assert "%(action)s" in messages["jobs.kind.schedule"]


# -- the world ----------------------------------------------------------------------------------


def _source(seq: int) -> dict:
    return {
        "system": f"qr{RUN}",
        "database": None,
        "schema": "public",
        "table": TABLE,
        "connector": "t",
        "position": "{}",
        "sequence": seq,
        "snapshot": False,
    }


def _fill(settings, raw: str) -> None:
    """The quarantine topic as a runner leaves it: PHONE_BAD records of phone_ok, NAME_BAD of name_required."""
    codec = WireCodec(settings.schema_registry_url)
    qtopic = quarantine_topic(raw)
    ensure_topics(settings.kafka_bootstrap, [raw], 1)
    ensure_topics(settings.kafka_bootstrap, [qtopic], 2)
    row_id = codec.register(value_subject(raw), envelope_schema(f"qr{RUN}", "public", TABLE, COLUMNS))
    qid = codec.register(value_subject(qtopic), QUARANTINE_SCHEMA)
    producer = Producer(client_config(settings.kafka_bootstrap))
    for i in range(1, PHONE_BAD + NAME_BAD + 1):
        phone_bad = i <= PHONE_BAD
        after = {
            "id": i,
            "name": f"居民{i}" if phone_bad else None,
            "phone": "12345" if phone_bad else FIXED,
            "age": 20,
        }
        event = make_event("c", None, after, 1_700_000_000_000 + i, _source(10 * i))
        rule, field = ("phone_ok", "phone") if phone_bad else ("name_required", "name")
        record = {
            "reason": "rules",
            "stage": "runner",
            "violations": [{"rule_id": rule, "field": field, "message": f"{field} is wrong", "dimension": "validity"}],
            "original_topic": raw,
            "original_partition": 0,
            "original_offset": i,
            "original_key": str(i).encode(),
            "original_value": codec.encode(row_id, event),
            "original_json": json.dumps(event, ensure_ascii=False),
            "ts_ms": int(time.time() * 1000),
        }
        producer.produce(qtopic, key=str(i).encode(), value=codec.encode(qid, record), partition=i % 2)
    assert producer.flush(30) == 0


@pytest.fixture(scope="module")
def world(stack_settings, pg_url):
    proc, base = start_api(stack_settings, port=PORT_BASE + 191)
    op = {"X-API-Key": (stack_settings.state_dir / "api_key").read_text().strip()}
    roles = {
        # no jobs:manage: the steward follows and cancels the replay jobs they start all the same
        f"qr-steward-{RUN}": (TENANT, ["quality:manage", "pipeline:view", "data:view"]),
        f"qr-operator-{RUN}": (TENANT, ["jobs:manage", "pipeline:view"]),
        f"qr-clerk-{RUN}": (TENANT, ["quality:manage", "pipeline:view"]),  # no data:view
        f"qr-stranger-{RUN}": (OTHER, ["quality:manage", "pipeline:view", "data:view"]),
    }
    for name, (tenant, permissions) in roles.items():
        r = httpx.post(base + "/roles", headers=op, json={"name": name, "tenant": tenant, "permissions": permissions})
        assert r.status_code == 201, r.text
    for user, role in ((STEWARD, "steward"), (CLERK, "clerk"), (STRANGER, "stranger"), (OPERATOR, "operator")):
        tenant = roles[f"qr-{role}-{RUN}"][0]
        body = {"username": user, "password": PASSWORD, "roles": [f"qr-{role}-{RUN}"], "tenant": tenant}
        r = httpx.post(base + "/users", headers=op, json=body, timeout=60)
        assert r.status_code == 201, r.text
    source = {"url": pg_url, "system": f"qr{RUN}", "db_schema": "public", "table": TABLE, "timestamp_column": "u"}
    document = {
        "name": PIPELINE,
        "tenant": TENANT,
        "source": {"kind": "relational.timestamp", "config": source},
        "rules": [{"id": "phone_ok", "kind": "required", "fields": ["phone"]}],
        "sink": {"kind": "clickhouse", "config": {"table": f"qr_{RUN}"}},
    }
    r = httpx.post(base + "/pipelines", headers=op, json=document, timeout=60)
    assert r.status_code == 201, r.text
    raw = PipelineSpec.model_validate(document).source_topic(stack_settings)
    _fill(stack_settings, raw)
    clients = {}
    for user in (STEWARD, CLERK, STRANGER, OPERATOR):
        token = httpx.post(base + "/auth/token", data={"username": user, "password": PASSWORD}, timeout=60)
        assert token.status_code == 200, token.text
        auth = {"Authorization": f"Bearer {token.json()['access_token']}"}
        clients[user] = httpx.Client(base_url=base, headers=auth, timeout=60)
    yield {"base": base, "op": op, "raw": raw, "settings": stack_settings, **clients}
    for client in clients.values():
        client.close()
    stop_api(proc)


def _wait_job(client: httpx.Client, job_id: str, timeout: float = 90.0) -> dict:
    deadline = time.time() + timeout
    while time.time() < deadline:
        job = client.get(f"/jobs/{job_id}").json()
        if job["state"] not in ("queued", "running"):
            return job
        time.sleep(0.3)
    pytest.fail(f"job {job_id} still active after {timeout}s")


# -- HTTP ---------------------------------------------------------------------------------------


def test_a_rules_quarantine_is_replayed_as_a_job(world):
    settings, raw, steward = world["settings"], world["raw"], world[STEWARD]
    before = topic_ends(settings.kafka_bootstrap, raw)
    body = {"pipeline": PIPELINE, "rule": "phone_ok", "set": {"phone": FIXED}, "reason": "号码已核实", "chunk": 100}
    r = steward.post("/quality/quarantine/replay-jobs", json=body)
    assert r.status_code == 202, r.text
    assert r.json()["topic"] == raw
    job = _wait_job(steward, r.json()["job_id"])
    assert (job["state"], job["type"], job["progress"]) == ("succeeded", "quality.quarantine.replay", 100.0), job
    result = job["result"]
    assert (result["replayed"], result["scanned"], result["complete"]) == (PHONE_BAD, PHONE_BAD + NAME_BAD, True)
    assert result["steps"] >= 3 and result["topic"] == raw  # 320 records read 100 a step
    assert sum(result["next_start"].values()) == PHONE_BAD + NAME_BAD
    assert "已重放 300 条" in job["message"] and "300 replayed" in job["message"]

    codec = WireCodec(settings.schema_registry_url)
    replayed = read_between(settings.kafka_bootstrap, raw, before)
    assert len(replayed) == PHONE_BAD
    for key, value in replayed:
        event = codec.decode(value)[1]
        assert event["after"]["phone"] == FIXED and event["after"]["id"] == int(key)
        assert event["source"]["sequence"] == 10 * int(key) + 1  # above the quarantined version

    audit = httpx.get(
        world["base"] + "/audit",
        headers=world["op"],
        params={"action": "quality.quarantine.replay.job", "actor": STEWARD},
    ).json()
    assert audit and audit[0]["outcome"] == "success"
    detail = audit[0]["detail"]
    assert (detail["job"], detail["rule"], detail["reason"], detail["fields"]) == (
        job["id"],
        "phone_ok",
        "号码已核实",
        ["phone"],
    )


def test_refusals_answer_at_once(world):
    ok = {"pipeline": PIPELINE, "rule": "phone_ok", "reason": "r"}
    r = world[STEWARD].post("/quality/quarantine/replay-jobs", json={**ok, "set": {"mobile": FIXED}})
    assert r.status_code == 422 and r.json()["detail"]["field"] == "set.mobile", r.text
    assert r.json()["detail"]["message_zh"] == "行中没有该字段"
    r = world[CLERK].post("/quality/quarantine/replay-jobs", json=ok)
    assert r.status_code == 403 and "data:view" in r.text
    r = world[STRANGER].post("/quality/quarantine/replay-jobs", json=ok)
    assert r.status_code == 404, r.text  # another tenant's pipeline reads as none
    r = world[STEWARD].post("/quality/quarantine/replay-jobs", json={**ok, "reason": ""})
    assert r.status_code == 422 and "reason" in r.text
    assert world[STEWARD].get("/jobs", params={"type": "quality.quarantine.replay"}).status_code == 200


def test_the_steward_sees_and_cancels_their_own_job_without_jobs_manage(world):
    """The message centre is personal: whoever started a job reads it, lists it and may cancel it,
    with no jobs:manage; another person of the tenant (with jobs:manage) sees none of it."""
    steward, colleague = world[STEWARD], world[OPERATOR]
    body = {"pipeline": PIPELINE, "rule": "name_required", "set": {"name": "王芳"}, "reason": "姓名已补录"}
    r = steward.post("/quality/quarantine/replay-jobs", json=body)
    assert r.status_code == 202, r.text
    job_id = r.json()["job_id"]
    listed = steward.get("/jobs", params={"type": "quality.quarantine.replay"})
    assert listed.status_code == 200 and job_id in [j["id"] for j in listed.json()], listed.text
    assert steward.get(f"/jobs/{job_id}").json()["operator"] == STEWARD
    cancel = steward.post(f"/jobs/{job_id}/cancel")  # 200 while it runs, 409 once it has ended
    assert cancel.status_code in (200, 409), cancel.text
    _wait_job(steward, job_id)
    assert colleague.get(f"/jobs/{job_id}").status_code == 404
    assert colleague.post(f"/jobs/{job_id}/cancel").status_code == 404
    assert job_id not in [j["id"] for j in colleague.get("/jobs", params={"limit": 1000}).json()]
    assert world[CLERK].get(f"/jobs/{job_id}").status_code == 404  # signed in, not theirs
    assert httpx.get(world["base"] + f"/jobs/{job_id}").status_code == 401  # no credential
    operator_view = httpx.get(world["base"] + f"/jobs/{job_id}", headers=world["op"])
    assert operator_view.status_code == 200  # the operator key (superuser) sees every job


def test_a_cancelled_job_keeps_what_it_replayed_and_says_where_it_stopped(world):
    from api.jobs import JobManager
    from api.quality.replay_jobs import replay_job

    settings, raw = world["settings"], world["raw"]
    before = topic_ends(settings.kafka_bootstrap, raw)
    manager = JobManager(settings.resolved_control_db_url, workers=1)
    job = replay_job(settings, quarantine_topic(raw), raw, "phone_ok", {}, chunk=100)

    def cancelled_while_running(ctx):
        manager.store.update(ctx.job_id, cancel_requested=1)  # what POST /jobs/{id}/cancel sets on a running job
        return job(ctx)

    done = manager.wait(manager.submit("quality.quarantine.replay", STEWARD, cancelled_while_running), 60)
    result = done["result"]
    assert done["state"] == "cancelled" and result["complete"] is False and result["steps"] == 1, done
    assert 0 < result["replayed"] <= 100 and result["scanned"] == 100
    assert sum(result["next_start"].values()) == 100  # where a later replay would go on
    assert len(read_between(settings.kafka_bootstrap, raw, before)) == result["replayed"]  # produced and acknowledged


# -- the console --------------------------------------------------------------------------------


def test_steward_repairs_replays_and_bulk_replays_in_the_console(browser, world, tmp_path):
    settings, raw = world["settings"], world["raw"]
    page, problems = new_page(browser, world)
    sign_in(page, STEWARD, PASSWORD)
    page.wait_for_url("**/console/")
    page.goto(f"/console/quality/quarantine?pipeline={PIPELINE}&rule=phone_ok")
    page.wait_for_selector("#quarantine-table")
    assert "共 300 条隔离记录" in page.locator("#quarantine-count").inner_text()

    before = topic_ends(settings.kafka_bootstrap, raw)
    rows = page.locator("#quarantine-table tbody tr")
    chosen = [rows.nth(0).get_attribute("data-record"), rows.nth(1).get_attribute("data-record")]
    rows.nth(0).locator("input[type=checkbox]").check()
    rows.nth(1).locator("input[type=checkbox]").check()
    page.locator("#fix-field-0").fill("phone")
    page.locator("#fix-value-0").fill(FIXED)
    page.locator("#fix-field-1").fill("age")
    page.locator("#fix-value-1").fill("31")
    page.locator("#do-replay").click()  # no reason yet: said on the page, nothing sent
    page.wait_for_selector("#quarantine-error")
    assert "请填写原因" in page.locator("#quarantine-error").inner_text()
    for ref in chosen:
        page.locator(f'#quarantine-table tr[data-record="{ref}"] input[type=checkbox]').check()
    page.locator("#fix-field-0").fill("phone")
    page.locator("#fix-value-0").fill(FIXED)
    page.locator("#fix-field-1").fill("age")
    page.locator("#fix-value-1").fill("31")
    page.locator("#repair-reason").fill("居民来电更正")
    page.locator("#do-replay").click()
    page.wait_for_selector("#quarantine-notice")
    assert f"已修正并重放 2 条记录到 {raw}" in page.locator("#quarantine-notice").inner_text()
    assert "/console/quality/quarantine?" in page.url  # Post/Redirect/Get: the page is a GET
    page.reload()  # reloading the page that says so posts nothing again
    page.wait_for_selector("#quarantine-table")
    assert page.locator("#quarantine-notice").count() == 0  # said once
    codec = WireCodec(settings.schema_registry_url)
    events = [codec.decode(v)[1]["after"] for _, v in read_between(settings.kafka_bootstrap, raw, before)]
    assert len(events) == 2 and all(e["phone"] == FIXED and e["age"] == 31 for e in events)  # 31 as an int

    page.locator("#quarantine-table tbody tr input[type=checkbox]").first.check()
    page.locator("#fix-field-0").fill("mobile")
    page.locator("#fix-value-0").fill(FIXED)
    page.locator("#repair-reason").fill("试一下")
    page.locator("#do-replay").click()
    page.wait_for_selector("#quarantine-error")
    assert "行中没有该字段" in page.locator("#quarantine-error").inner_text()  # the API's refusal, in Chinese
    page.screenshot(path=str(tmp_path / "repair.png"), full_page=True)

    clean = clean_topic(raw)
    ensure_topics(settings.kafka_bootstrap, [clean], 1)
    before_clean = topic_ends(settings.kafka_bootstrap, clean)
    accepted = page.locator("#quarantine-table tbody tr").nth(2)
    accepted_id = int(accepted.locator(".row .field").first.inner_text().split(":")[1])
    accepted.locator("input[type=checkbox]").check()
    page.locator("#repair-reason").fill("核实无误，豁免")
    page.locator("#do-accept").click()
    page.wait_for_selector("#quarantine-notice")
    assert f"已接受（豁免）1 条记录，放行到 {clean}" in page.locator("#quarantine-notice").inner_text()
    page.reload()
    page.wait_for_selector("#quarantine-table")
    passed = [codec.decode(v)[1]["after"] for _, v in read_between(settings.kafka_bootstrap, clean, before_clean)]
    assert [(e["id"], e["phone"]) for e in passed] == [(accepted_id, "12345")]  # as it was

    assert page.locator("#bulk-rule").input_value() == "phone_ok"  # from the filter
    page.locator("#bulk-field-0").fill("phone")
    page.locator("#bulk-value-0").fill(FIXED)
    page.locator("#bulk-reason").fill("规则修正后重放")
    page.locator("#do-bulk-replay").click()
    page.wait_for_selector("#replay-job[data-state=succeeded]", timeout=90_000)  # the row, polled
    row = page.locator("#replay-job tr[data-job]")
    assert row.get_attribute("data-kind") == "quality.quarantine.replay" and "隔离记录批量重放" in row.inner_text()
    assert "已重放 300 条" in page.locator("#replay-job-result").inner_text()
    page.screenshot(path=str(tmp_path / "bulk.png"), full_page=True)

    page.goto(f"/console/quality/quarantine?pipeline={PIPELINE}&rule=phone_ok&lang=en")
    assert page.locator("#do-replay").inner_text() == "Correct and replay"
    assert page.locator("#do-bulk-replay").inner_text() == "Start the replay"
    assert problems == [], problems
