"""Quality scorecards, profiles and reports (issue 16) through the real API process, ClickHouse and
an SMTP server: known metric rows (two tenants) give known scores per dataset, system and catalogue
department; a monthly report's figures (records checked, problems by dimension and rule, top tables,
causes, previous period) are in its PDF, opened with pypdf, with its charts as images, and in its
HTML; reports are kept with history and downloadable; subscribers get the PDF by e-mail, on demand
and from the scheduler's action run as a job; a catalogue ClickHouse table is profiled with known
statistics and suggested rules; another tenant gets 404, a viewer 403, bad input a 4xx naming it."""

from __future__ import annotations

import datetime as dt
import email
import io
import time
import uuid

import httpx
import pytest
from aiosmtpd.controller import Controller
from pypdf import PdfReader

from tests.api_process import stop_api, wait_for
from tests.support.identity import login, make_user, start_keyed_api

RUN = uuid.uuid4().hex[:6]
TENANT, OTHER = f"qr{RUN}", f"qo{RUN}"
SMTP_PORT = 25210
END = dt.date(2026, 11, 1)  # the monthly report: 2026-10-02 .. 2026-11-01, previous from 2026-09-02
PEOPLE, FIRMS = "huiliu.reg.public.people", "huiliu.tax.public.firms"


def _row(day, scope, system, dataset, rule, dim, msg, ev, f, minute=0):
    start = dt.datetime.combine(day, dt.time(10, minute))
    return (start, scope, f"p-{system}", system, dataset, rule, dim, msg, ev, f)


ROWS = [
    _row(dt.date(2026, 10, 10), TENANT, "reg", PEOPLE, "gender", "validity", "性别代码无效", 1000, 30),
    _row(dt.date(2026, 10, 10), TENANT, "reg", PEOPLE, "gender", "validity", "性别代码无效", 1000, 20, 1),
    _row(dt.date(2026, 10, 20), TENANT, "reg", PEOPLE, "name_required", "completeness", "姓名必填", 2000, 5),
    _row(dt.date(2026, 10, 25), TENANT, "tax", FIRMS, "credit_code", "validity", "统一社会信用代码无效", 500, 100),
    _row(dt.date(2026, 9, 15), TENANT, "reg", PEOPLE, "gender", "validity", "性别代码无效", 1000, 10),  # previous
    _row(dt.date(2026, 11, 1), TENANT, "reg", PEOPLE, "gender", "validity", "性别代码无效", 999, 999),  # after
    _row(dt.date(2026, 10, 10), OTHER, "reg", PEOPLE, "gender", "validity", "性别代码无效", 7777, 7777),
]


class Inbox:
    def __init__(self):
        self.messages: list[email.message.Message] = []

    async def handle_DATA(self, server, session, envelope):
        self.messages.append(email.message_from_bytes(envelope.content))
        return "250 OK"


@pytest.fixture(scope="module")
def inbox():
    box = Inbox()
    controller = Controller(box, hostname="127.0.0.1", port=SMTP_PORT)
    controller.start()
    yield box
    controller.stop()


@pytest.fixture(scope="module")
def api(stack_settings, tmp_path_factory):
    from quality_stream.metrics.schema import RAW, ensure_tables
    from sinks.clickhouse import client_from_url

    settings = stack_settings.model_copy(
        update={
            "state_dir": tmp_path_factory.mktemp("qr-state"),
            "control_db_url": "",
            "probe_allow": [f"127.0.0.1:{SMTP_PORT}"],
        }
    )
    ch = client_from_url(settings.clickhouse_url)
    ensure_tables(ch)
    ch.execute(f"INSERT INTO {RAW} VALUES", ROWS)
    table = f"qr_prof_{RUN}"
    ch.execute(f"CREATE TABLE {table} (id UInt32, code String, gender Nullable(String)) ENGINE = MergeTree ORDER BY id")
    ch.execute(
        f"INSERT INTO {table} SELECT number, concat('A', toString(100 + number % 900)), "
        "if(number % 5 = 0, NULL, toString(number % 2 + 1)) FROM numbers(500)"
    )
    proc, base, key = start_keyed_api(settings)
    try:
        make_user(base, key, f"{TENANT}-dev", ["developer"], tenant=TENANT)
        make_user(base, key, f"{TENANT}-viewer", ["viewer"], tenant=TENANT)
        make_user(base, key, f"{OTHER}-dev", ["developer", "operator"], tenant=OTHER)
        make_user(base, key, f"{TENANT}-ops", ["developer", "operator"], tenant=TENANT)
        ch_urn = _catalogue(settings, table)
        yield {
            "base": base,
            "dev": login(base, f"{TENANT}-dev"),
            "viewer": login(base, f"{TENANT}-viewer"),
            "other": login(base, f"{OTHER}-dev"),
            "ops": login(base, f"{TENANT}-ops"),
            "ch_urn": ch_urn,
            "table": table,
            "settings": settings,
        }
    finally:
        stop_api(proc)
        ch.execute(f"DROP TABLE IF EXISTS {table}")
        ch.disconnect()


def _catalogue(settings, table: str) -> str:
    """The tenant's catalogue: a PostgreSQL table of the 民政局 department, a ClickHouse table."""
    from deploy.control import engine_for
    from schemas.catalog.business import BusinessPatch
    from schemas.catalog.model import DatasetInfo, FieldInfo, Harvest, SystemInfo
    from schemas.catalog.store import CatalogStore
    from schemas.catalog.urns import dataset_urn, system_urn

    store = CatalogStore(engine_for(settings.resolved_control_db_url))
    pg_ns = "postgres://10.0.0.1:5432"
    people = dataset_urn(pg_ns, "reg/public.people")
    store.record(
        Harvest(
            SystemInfo(system_urn(pg_ns, "reg"), "reg", "postgres"),
            [DatasetInfo(people, "public.people", "table", [FieldInfo("id", "integer", 1)])],
        ),
        TENANT,
    )
    store.update_business({TENANT}, people, BusinessPatch(department="民政局"))
    ch_ns = f"clickhouse://127.0.0.1:{settings.port_of(settings.clickhouse_url.split('@')[-1].split('/')[0])}"
    ch_urn = dataset_urn(ch_ns, f"default.{table}")
    store.record(
        Harvest(
            SystemInfo(system_urn(ch_ns, "default"), "clickhouse", "clickhouse"),
            [DatasetInfo(ch_urn, f"default.{table}", "sink_table", [FieldInfo("id", "UInt32", 1)])],
        ),
        TENANT,
    )
    return ch_urn


def _score(ev: int, f: int) -> float:
    return round(100.0 * (1 - f / ev), 2)


def test_scorecards_per_dataset_system_and_department(api):
    base = api["base"]
    r = httpx.get(base + "/quality/scorecards", params={"by": "system", "days": 200}, headers=api["dev"])
    assert r.status_code == 200, r.text
    items = {i["key"]: i for i in r.json()["items"]}
    assert set(items) == {"reg", "tax"}  # the other tenant's rows are not here
    assert items["reg"]["evaluated"] == 5999 and items["reg"]["failed"] == 1064
    assert items["reg"]["score"] == _score(5999, 1064)
    assert items["reg"]["dimensions"] == {"completeness": _score(2000, 5), "validity": _score(3999, 1059)}
    assert r.json()["items"][0]["key"] == "tax"  # worst first
    assert [t["day"] for t in items["reg"]["trend"]] == ["2026-09-15", "2026-10-10", "2026-10-20", "2026-11-01"]
    assert items["reg"]["trend"][1]["score"] == _score(2000, 50)
    by_dataset = httpx.get(
        base + "/quality/scorecards", params={"by": "dataset", "days": 200}, headers=api["dev"]
    ).json()
    assert {i["key"] for i in by_dataset["items"]} == {PEOPLE, FIRMS}
    deps = httpx.get(base + "/quality/scorecards", params={"by": "department", "days": 200}, headers=api["dev"]).json()
    assert [(i["key"], i["evaluated"], i["failed"]) for i in deps["items"]] == [("民政局", 5999, 1064)]
    other = httpx.get(base + "/quality/scorecards", params={"by": "system", "days": 200}, headers=api["other"]).json()
    assert [(i["key"], i["evaluated"]) for i in other["items"]] == [("reg", 7777)]
    assert httpx.get(base + "/quality/scorecards", headers=api["viewer"]).status_code == 403
    bad = httpx.get(base + "/quality/scorecards", params={"by": "city"}, headers=api["dev"])
    assert bad.status_code == 422 and "by" in bad.text


def _pdf_text(pdf: bytes) -> tuple[str, int]:
    reader = PdfReader(io.BytesIO(pdf))
    return "\n".join(p.extract_text() for p in reader.pages), sum(len(p.images) for p in reader.pages)


def test_a_monthly_system_report_in_pdf_and_html_kept_and_downloadable(api):
    base = api["base"]
    body = {"kind": "system", "target": "reg", "period": "monthly", "end": END.isoformat()}
    r = httpx.post(base + "/quality/reports", json=body, headers=api["dev"], timeout=60)
    assert r.status_code == 201, r.text
    report = r.json()
    s = report["summary"]
    assert (s["start"], s["end"], s["previous_start"]) == ("2026-10-02", "2026-11-01", "2026-09-02")
    assert (s["totals"]["evaluated"], s["totals"]["failed"]) == (4000, 55)
    assert s["totals"]["score"] == _score(4000, 55)
    assert (s["previous"]["evaluated"], s["previous"]["failed"]) == (1000, 10)
    assert s["score_change"] == round(_score(4000, 55) - _score(1000, 10), 2)
    assert {d["dimension"]: (d["evaluated"], d["failed"]) for d in s["by_dimension"]} == {
        "completeness": (2000, 5),
        "validity": (2000, 50),
    }
    assert [(c["message"], c["failed"]) for c in s["causes"]] == [("性别代码无效", 50), ("姓名必填", 5)]
    assert [(t["dataset"], t["failed"]) for t in s["top_datasets"]] == [(PEOPLE, 55)]

    pdf = httpx.get(base + f"/quality/reports/{report['id']}/report.pdf", headers=api["dev"])
    assert pdf.status_code == 200 and pdf.headers["content-type"] == "application/pdf"
    text, images = _pdf_text(pdf.content)
    for figure in (
        "数据质量报告",
        "月报",
        "4000",
        "55",
        str(_score(4000, 55)),
        "性别代码无效",
        "姓名必填",
        "完整性",
        PEOPLE,
    ):
        assert figure in text, figure
    assert images >= 3  # the dimension, trend and rule charts
    html = httpx.get(base + f"/quality/reports/{report['id']}/report.html", headers=api["dev"])
    assert html.status_code == 200 and html.text.count("<svg") >= 3 and "性别代码无效" in html.text

    everything = httpx.post(
        base + "/quality/reports",
        json={"period": "monthly", "end": END.isoformat(), "lang": "en"},
        headers=api["dev"],
        timeout=60,
    ).json()
    assert (everything["summary"]["totals"]["evaluated"], everything["summary"]["totals"]["failed"]) == (4500, 155)
    assert [t["dataset"] for t in everything["summary"]["top_datasets"]] == [FIRMS, PEOPLE]
    assert (
        "Data quality report"
        in _pdf_text(httpx.get(base + f"/quality/reports/{everything['id']}/report.pdf", headers=api["dev"]).content)[0]
    )
    dep = httpx.post(
        base + "/quality/reports",
        json={**body, "kind": "department", "target": "民政局"},
        headers=api["dev"],
        timeout=60,
    ).json()
    assert (dep["summary"]["totals"]["evaluated"], dep["summary"]["totals"]["failed"]) == (4000, 55)

    history = httpx.get(base + "/quality/reports", headers=api["dev"]).json()["items"]
    assert [h["id"] for h in history][:3] == [dep["id"], everything["id"], report["id"]]
    assert (
        httpx.get(base + "/quality/reports", params={"kind": "system"}, headers=api["dev"]).json()["items"][0]["id"]
        == report["id"]
    )

    # another tenant: unknown; a viewer: no permission
    for path in ("", "/report.pdf", "/report.html"):
        assert httpx.get(base + f"/quality/reports/{report['id']}{path}", headers=api["other"]).status_code == 404
        assert httpx.get(base + f"/quality/reports/{report['id']}{path}", headers=api["viewer"]).status_code == 403
    assert httpx.get(base + "/quality/reports", headers=api["other"]).json()["items"] == []
    missing = httpx.post(base + "/quality/reports", json={"kind": "system"}, headers=api["dev"])
    assert missing.status_code == 422 and missing.json()["detail"]["field"] == "target"
    assert "message_zh" in missing.json()["detail"]


def test_subscribers_get_the_pdf_on_demand_and_from_the_scheduled_action(api, inbox):
    base = api["base"]
    channel = {"smtp_host": "127.0.0.1", "smtp_port": SMTP_PORT, "from": "huiliu@test.local", "to": ["lead@test.local"]}
    sub = httpx.post(
        base + "/quality/report-subscriptions",
        json={"kind": "system", "target": "tax", "period": "weekly", "channel": channel},
        headers=api["dev"],
    )
    assert sub.status_code == 201, sub.text
    refused = httpx.post(
        base + "/quality/report-subscriptions",
        json={"kind": "system", "target": "tax", "period": "weekly", "channel": {**channel, "smtp_host": "10.9.9.9"}},
        headers=api["dev"],
    )
    assert refused.status_code == 422 and refused.json()["detail"]["field"] == "channel.smtp_host"
    assert httpx.get(base + "/quality/report-subscriptions", headers=api["other"]).json()["items"] == []

    body = {"kind": "system", "target": "tax", "period": "weekly", "end": "2026-10-28", "email": True}
    report = httpx.post(base + "/quality/reports", json=body, headers=api["dev"], timeout=60).json()
    assert report["emailed"] == [{"subscription": sub.json()["id"], "sent": True}]
    msg = wait_for(lambda: inbox.messages[-1] if inbox.messages else None)
    assert msg["To"] == "lead@test.local"
    attachment = next(p for p in msg.walk() if p.get_content_type() == "application/pdf")
    text, _ = _pdf_text(attachment.get_payload(decode=True))
    assert "统一社会信用代码无效" in text and "500" in text and "100" in text

    # the scheduler's action (what a daily/weekly/monthly schedule runs), submitted as a job
    before = len(inbox.messages)
    job = httpx.post(
        base + "/jobs",
        json={"action": "quality.report", "params": {"kind": "system", "target": "tax", "period": "weekly"}},
        headers=api["ops"],
    )
    assert job.status_code == 202, job.text
    done = wait_for(
        lambda: (
            (j := httpx.get(base + f"/jobs/{job.json()['id']}", headers=api["ops"]).json())["state"]
            in ("succeeded", "failed")
            and j
        ),
        timeout=60,
    )
    assert done["state"] == "succeeded", done
    assert wait_for(lambda: len(inbox.messages) > before)
    scheduled = httpx.get(base + f"/quality/reports/{done['result']['report']}", headers=api["dev"]).json()
    assert scheduled["created_by"] == "scheduler" and scheduled["period"] == "weekly"
    bad = httpx.post(
        base + "/jobs", json={"action": "quality.report", "params": {"period": "hourly"}}, headers=api["ops"]
    )
    assert bad.status_code == 422 and "params.period" in bad.text

    assert (
        httpx.delete(base + f"/quality/report-subscriptions/{sub.json()['id']}", headers=api["other"]).status_code
        == 404
    )
    assert (
        httpx.delete(base + f"/quality/report-subscriptions/{sub.json()['id']}", headers=api["dev"]).status_code == 204
    )


def test_profile_of_a_catalogue_clickhouse_table_with_suggested_rules(api):
    base = api["base"]
    r = httpx.post(base + "/quality/profiles", json={"dataset": api["ch_urn"]}, headers=api["dev"], timeout=60)
    assert r.status_code == 201, r.text
    p = r.json()
    cols = p["profile"]["columns"]
    assert p["profile"]["rows"] == 500 and p["dataset_version"] == 1
    assert cols["gender"]["nulls"] == 100 and cols["gender"]["null_ratio"] == 0.2
    assert cols["code"]["patterns"] == ["A999"] and (cols["code"]["min"], cols["code"]["max"]) == ("A100", "A599")
    rules = {s["id"]: s for s in p["suggestions"]}
    assert rules["profile.code.pattern"]["pattern"] == r"^[A-Za-z]\d{3}$"
    assert rules["profile.gender.values"]["values"] == ["1", "2"]
    assert "profile.code.required" in rules and "profile.gender.required" not in rules
    listed = httpx.get(base + "/quality/profiles", params={"dataset": api["ch_urn"]}, headers=api["dev"]).json()
    assert [i["id"] for i in listed["items"]] == [p["id"]]
    assert (
        httpx.get(base + "/quality/profiles", params={"dataset": api["ch_urn"]}, headers=api["other"]).json()["items"]
        == []
    )
    assert (
        httpx.post(base + "/quality/profiles", json={"dataset": api["ch_urn"]}, headers=api["other"]).status_code == 404
    )
    not_ch = httpx.post(
        base + "/quality/profiles",
        json={"dataset": "hl:dataset:postgres://10.0.0.1:5432/reg/public.people"},
        headers=api["dev"],
    )
    assert not_ch.status_code == 422 and not_ch.json()["detail"]["field"] == "dataset"
    col = httpx.post(
        base + "/quality/profiles", json={"dataset": api["ch_urn"], "columns": ["nope"]}, headers=api["dev"]
    )
    assert col.status_code == 422 and "nope" in col.text
    assert (
        httpx.post(base + "/quality/profiles", json={"dataset": api["ch_urn"]}, headers=api["viewer"]).status_code
        == 403
    )
    time.sleep(0)  # keep the module's API alive until here


def _job(base: str, headers: dict, job_id: str, states: tuple[str, ...], timeout: float = 60) -> dict:
    return wait_for(
        lambda: (j := httpx.get(f"{base}/jobs/{job_id}", headers=headers).json()).get("state") in states and j,
        timeout,
    )


def test_profiling_as_a_message_centre_job_with_progress_and_cancel(api):
    """POST /quality/profile-jobs answers a job at once; the job reports progress, stores the profile with
    the dataset's catalogue version and names it in its result; a cancel stops a long scan in ClickHouse."""
    from sinks.clickhouse import client_from_url

    base, ops = api["base"], api["ops"]
    r = httpx.post(base + "/quality/profile-jobs", json={"dataset": api["ch_urn"]}, headers=ops, timeout=60)
    assert r.status_code == 202, r.text
    job = _job(base, ops, r.json()["job_id"], ("succeeded", "failed"))
    assert job["state"] == "succeeded", job
    assert job["type"] == "quality.profile" and job["progress"] == 100.0 and "500" in job["message"]
    result = job["result"]
    assert (result["rows"], result["columns"], result["dataset_version"]) == (500, 3, 1)
    listed = httpx.get(base + "/quality/profiles", params={"dataset": api["ch_urn"]}, headers=ops).json()["items"]
    stored = next(p for p in listed if p["id"] == result["profile_id"])
    assert stored["profile"]["columns"]["gender"]["nulls"] == 100 and stored["created_by"] == f"{TENANT}-ops"

    bad = httpx.post(base + "/quality/profile-jobs", json={"dataset": api["ch_urn"], "columns": ["nope"]}, headers=ops)
    assert bad.status_code == 422 and "nope" in bad.text  # said now, not as a failed job later
    other = httpx.post(base + "/quality/profile-jobs", json={"dataset": api["ch_urn"]}, headers=api["other"])
    assert other.status_code == 404
    viewer = httpx.post(base + "/quality/profile-jobs", json={"dataset": api["ch_urn"]}, headers=api["viewer"])
    assert viewer.status_code == 403

    # a view over 10^10 generated rows: a scan long enough to cancel while it runs
    ch = client_from_url(api["settings"].clickhouse_url)
    view = f"qr_big_{RUN}"
    ch.execute(f"CREATE VIEW {view} AS SELECT number AS id, toString(number % 977) AS code FROM numbers(10000000000)")
    try:
        big = _catalogue_one(api["settings"], view)

        def scans_left() -> int:
            sql = (
                "SELECT count() FROM system.processes WHERE query LIKE %(q)s AND query NOT LIKE '%%system.processes%%'"
            )
            return ch.execute(sql, {"q": f"%uniq(%qr_big_{RUN}%"})[0][0]

        r = httpx.post(base + "/quality/profile-jobs", json={"dataset": big}, headers=ops, timeout=60)
        assert r.status_code == 202, r.text
        job_id = r.json()["job_id"]
        wait_for(lambda: scans_left() == 1, 60)  # the scan runs in ClickHouse
        running = _job(base, ops, job_id, ("running",), 10)
        assert "qr_big_" in running["message"] and running["progress"] < 80
        assert httpx.post(f"{base}/jobs/{job_id}/cancel", headers=ops).status_code == 200
        done = _job(base, ops, job_id, ("cancelled", "succeeded", "failed"), 30)
        assert done["state"] == "cancelled", done
        assert not [
            p for p in httpx.get(base + "/quality/profiles", params={"dataset": big}, headers=ops).json()["items"]
        ]

        wait_for(lambda: scans_left() == 0, 20)  # the query itself was cancelled in ClickHouse
    finally:
        ch.execute(f"DROP TABLE IF EXISTS {view}")  # ClickHouse 18.16 drops views so
        ch.disconnect()


def _catalogue_one(settings, table: str) -> str:
    from deploy.control import engine_for
    from schemas.catalog.model import DatasetInfo, FieldInfo, Harvest, SystemInfo
    from schemas.catalog.store import CatalogStore
    from schemas.catalog.urns import dataset_urn, system_urn

    ns = f"clickhouse://127.0.0.1:{settings.port_of(settings.clickhouse_url.split('@')[-1].split('/')[0])}"
    urn = dataset_urn(ns, f"default.{table}")
    CatalogStore(engine_for(settings.resolved_control_db_url)).record(
        Harvest(
            SystemInfo(system_urn(ns, "default"), "clickhouse", "clickhouse"),
            [
                DatasetInfo(
                    urn, f"default.{table}", "view", [FieldInfo("id", "UInt64", 1), FieldInfo("code", "String", 2)]
                )
            ],
        ),
        TENANT,
    )
    return urn
