"""Console pages over the governance APIs (issues 16 and 17) in a real browser (Chromium, as
tests/test_console_browser.py), against a real API process and the test stack's ClickHouse.

Set up through the API (and the catalogue store, as a sink's harvest records a ClickHouse table):
a table whose column `col_a` holds GB/T 2261.1 gender codes (its name says nothing), a data element
on that code set, the dataset owned by a group, and a published data service serving it.
In the browser: the steward asks for suggestions from values (按取值建议), sees the evidence (share
of sampled values that are codes of the set) and confirms it, and the mapping is listed; the
steward profiles the table as a job (progress polled, then the column profiles and the null-ratio
chart); the owning group's member is shown the dataset as theirs, with no request form (the console
reads the person's groups from /auth/me); a requester asks for access (a bad form first: the reasons in Chinese), the owning group's
member rejects one request with a comment and approves another with fewer fields (the app key shown
once; the decision answers with a redirect to the list, so reloading it decides nothing again), and the requester sees both decisions on the dataset's page and the access-requests page. Screenshots: <pytest tmp>/governance-shots/.
"""

from __future__ import annotations

import uuid
from pathlib import Path
from urllib.parse import quote, urlparse

import httpx
import pytest

from tests.api_process import start_api, stop_api
from tests.conftest import PORT_BASE
from tests.support.console import chromium_browser, new_page, sign_in  # noqa: F401  (fixture `browser`)
from tests.support.identity import PASSWORD, login, make_user

pytestmark = pytest.mark.integration  # starts an API process of its own and a browser

RUN = uuid.uuid4().hex[:6]
TENANT = f"gov{RUN}"
STEWARD, REVIEWER, OWNER, REQUESTER = (f"gov-{who}-{RUN}" for who in ("steward", "reviewer", "owner", "requester"))
GROUP = f"gov-owners-{RUN}"
TABLE = f"gov_people_{RUN}"
SERVICE = f"gov_people_{RUN}"
ROWS = 400  # col_a: 1, 2 and 9 (GB/T 2261.1 codes); phone NULL in one row of four


def _catalogue(settings) -> str:
    """The table in TENANT's catalogue, as the ClickHouse sink's harvest records it."""
    from deploy.control import engine_for
    from schemas.catalog.model import DatasetInfo, FieldInfo, Harvest, SystemInfo
    from schemas.catalog.store import CatalogStore
    from schemas.catalog.urns import dataset_urn, host_namespace, system_urn

    address = urlparse(settings.clickhouse_url)
    namespace = host_namespace("clickhouse", f"{address.hostname}:{address.port}")
    columns = [("id", "Int64"), ("col_a", "String"), ("name", "String"), ("phone", "Nullable(String)")]
    fields = [FieldInfo(name=n, type=t, position=i + 1, key=n == "id") for i, (n, t) in enumerate(columns)]
    urn = dataset_urn(namespace, f"default.{TABLE}")
    system = SystemInfo(system_urn(namespace, "default"), "clickhouse default", "clickhouse")
    harvest = Harvest(system=system, datasets=[DatasetInfo(urn, f"default.{TABLE}", "sink_table", fields)])
    CatalogStore(engine_for(settings.resolved_control_db_url)).record(harvest, TENANT)
    return urn


@pytest.fixture(scope="module")
def console(stack_settings):
    from sinks.clickhouse import client_from_url

    ch = client_from_url(stack_settings.clickhouse_url)
    ch.execute(
        f"CREATE TABLE {TABLE} (id Int64, col_a String, name String, phone Nullable(String), _version UInt64, "
        "_deleted UInt8) ENGINE = ReplacingMergeTree(_version) ORDER BY id"
    )
    rows = [
        (i, "9" if i % 40 == 0 else str(1 + i % 2), f"人员{i}", None if i % 4 == 0 else f"138{i:08d}", 1, 0)
        for i in range(ROWS)
    ]
    ch.execute(f"INSERT INTO {TABLE} VALUES", rows)
    proc, base = start_api(stack_settings, port=PORT_BASE + 450)
    key = (stack_settings.state_dir / "api_key").read_text().strip()
    try:
        assert (
            httpx.post(base + "/groups", headers={"X-API-Key": key}, json={"name": GROUP, "tenant": TENANT}).status_code
            == 201
        )
        for user in (STEWARD, REVIEWER, REQUESTER):
            make_user(base, key, user, ["admin"], tenant=TENANT)
        make_user(base, key, OWNER, ["admin"], tenant=TENANT, groups=[GROUP])
        steward = httpx.Client(base_url=base, headers=login(base, STEWARD), timeout=60)
        reviewer = httpx.Client(base_url=base, headers=login(base, REVIEWER), timeout=60)
        urn = _catalogue(stack_settings)
        assert steward.post("/standards/national/gb2261_1/install").status_code == 201
        element = {"code": "sex_code", "name_zh": "性别代码", "length": 1, "code_set": "gb2261_1"}
        assert steward.post("/standards/elements", json=element).status_code == 201
        r = steward.patch(f"/metadata/datasets/{quote(urn, safe='')}", json={"owner": f"group:{GROUP}"})
        assert r.status_code == 200, r.text
        document = {
            "name": SERVICE,
            "title": "人员",
            "dataset": urn,
            "resource": {"kind": "clickhouse", "table": TABLE},
            "fields": ["id", "col_a", "name", "phone"],
            "filters": [{"field": "id", "ops": ["eq"]}],
            "sort": ["id"],
        }
        r = steward.post("/services", json=document)
        assert r.status_code == 201, r.text
        assert steward.post(f"/services/{SERVICE}/submit").status_code == 200
        r = reviewer.post(f"/services/{SERVICE}/review", json={"approve": True})
        assert r.status_code == 200 and r.json()["status"] == "published", r.text
        yield {"base": base, "urn": urn, "steward": steward, "op": {"X-API-Key": key}}
        steward.close()
        reviewer.close()
    finally:
        stop_api(proc)
        ch.execute(f"DROP TABLE IF EXISTS {TABLE}")
        ch.disconnect()


@pytest.fixture(scope="module")
def shots(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("governance-shots")


def _signed_in(browser, console, user: str):
    page, problems = new_page(browser, console)
    sign_in(page, user, PASSWORD)
    page.wait_for_url("**/console/")
    return page, problems


def _dataset(page, console) -> None:
    page.goto("/console/catalog/dataset?urn=" + quote(console["urn"], safe=""))
    page.wait_for_selector("#dataset-name")


def test_a_suggestion_from_values_is_confirmed_and_listed(browser, console, shots):
    page, problems = _signed_in(browser, console, STEWARD)
    _dataset(page, console)
    page.get_by_role("link", name="数据标准映射").click()
    page.wait_for_selector("#suggestions-table")
    assert (
        page.locator('#suggestions-table tr[data-field="col_a"][data-element="sex_code"]').count() == 0
    )  # not by name
    page.get_by_role("link", name="按取值建议").click()
    row = page.locator('#suggestions-table tr[data-field="col_a"][data-element="sex_code"]')
    row.wait_for()
    assert row.locator('[data-basis="values"]').inner_text() == "取值"
    assert row.locator(".score").get_attribute("data-score") == "1.0"
    code_set = row.locator('[data-check="code_set"]')
    assert code_set.get_attribute("data-ratio") == "1.0"
    assert f"抽样 {ROWS} 个值中 100% 是" in code_set.inner_text()  # the evidence, in Chinese
    page.screenshot(path=str(shots / "mapping-suggested.png"), full_page=True)
    page.goto(page.url + "&lang=en")  # the same evidence in English
    english = page.locator('#suggestions-table tr[data-field="col_a"][data-element="sex_code"]')
    assert f"100% of {ROWS} sampled values are" in english.locator('[data-check="code_set"]').inner_text()
    assert english.get_by_role("button", name="Confirm col_a as sex_code").is_visible()
    page.goto(page.url.replace("&lang=en", "&lang=zh-CN"))
    row.get_by_role("button", name="确认 col_a 映射到 sex_code").click()
    page.wait_for_selector("#mapping-done")
    mapped = page.locator('#mapped-table tr[data-field="col_a"]')
    assert mapped.get_attribute("data-element") == "sex_code" and "采纳建议" in mapped.inner_text()
    assert page.locator('#suggestions-table tr[data-field="col_a"]').count() == 0  # mapped: no longer suggested
    stored = console["steward"].get("/standards/mappings", params={"dataset": console["urn"]}).json()
    assert [(m["field"], m["element"], m["method"]) for m in stored] == [("col_a", "sex_code", "suggested")]
    assert not problems, problems
    page.context.close()


def test_a_profile_job_shows_progress_then_the_column_profiles(browser, console, shots):
    page, problems = _signed_in(browser, console, STEWARD)
    _dataset(page, console)
    page.get_by_role("link", name="数据剖析").click()
    page.wait_for_selector("#profile-none")
    page.get_by_role("button", name="开始剖析").click()
    page.wait_for_selector('#profile-job [data-job]')  # the job's row, polled
    page.wait_for_selector("#profile-table", timeout=90_000)  # done: the page again, with the profile
    assert page.locator("#profile-job").get_attribute("data-state") == "succeeded"
    assert page.locator("#profile-done").is_visible() and page.locator("#profile-rows").inner_text() == f"{ROWS:,}"
    phone = page.locator('#profile-table tr[data-column="phone"]')
    assert phone.get_attribute("data-nulls") == str(ROWS // 4) and "25.0%" in phone.locator(".null-ratio").inner_text()
    col_a = page.locator('#profile-table tr[data-column="col_a"]')
    assert col_a.get_attribute("data-distinct") == "3" and "9" in col_a.locator(".patterns").inner_text()
    assert {"1", "2", "9"} <= set(col_a.locator(".top-values code").all_inner_texts())
    chart = page.locator("#chart-profile")
    chart.locator("canvas").wait_for()
    assert chart.get_attribute("data-categories") == "4" and chart.get_attribute("data-series") == "2"
    page.screenshot(path=str(shots / "profile.png"), full_page=True)
    stored = console["steward"].get("/quality/profiles", params={"dataset": console["urn"]}).json()["items"]
    assert len(stored) == 1 and stored[0]["profile"]["columns"]["phone"]["nulls"] == ROWS // 4
    assert not problems, problems
    page.context.close()


def test_the_owning_groups_member_is_not_offered_the_request_form(browser, console, shots):
    """Before any request exists (the API lists none to anyone), the console knows the person's
    groups from /auth/me: the owning group's member sees that the dataset is theirs, not the form."""
    base = console["base"]
    assert httpx.get(base + "/auth/me", headers=login(base, OWNER)).json()["groups"] == [GROUP]
    assert httpx.get(base + "/auth/me", headers=login(base, REQUESTER)).json()["groups"] == []
    owner, problems = _signed_in(browser, console, OWNER)
    _dataset(owner, console)
    assert owner.locator("#access-request").count() == 0
    assert "您是该数据集的所有者" in owner.locator("#access-owner").inner_text()
    owner.screenshot(path=str(shots / "access-owner.png"), full_page=True)
    owner.goto("/console/catalog/dataset?lang=en&urn=" + quote(console["urn"], safe=""))
    assert "You own this dataset" in owner.locator("#access-owner").inner_text()
    assert not problems, problems
    owner.context.close()
    asker, asker_problems = _signed_in(browser, console, REQUESTER)
    _dataset(asker, console)
    assert asker.locator("#access-open").is_visible() and asker.locator("#access-owner").count() == 0
    assert not asker_problems, asker_problems
    asker.context.close()


def test_access_is_asked_approved_with_fewer_fields_and_the_decision_seen(browser, console, shots):
    asker, asker_problems = _signed_in(browser, console, REQUESTER)
    _dataset(asker, console)
    asker.get_by_text("申请访问", exact=True).click()
    asker.get_by_label("用途").fill("核对人员信息")
    asker.get_by_role("button", name="提交申请").click()  # no application, no field: refused here
    assert "请至少选择一个字段" in asker.locator("#access-request").inner_text()
    assert "应用名称须以小写字母开头" in asker.locator("#access-request").inner_text()
    asker.screenshot(path=str(shots / "access-form-refused.png"), full_page=True)
    asker_problems.clear()  # the refused form answers 422
    asker.get_by_label("使用数据的应用（小写字母开头，字母、数字、下划线）").fill(f"checks_{RUN}")
    for field in ("id", "name", "phone"):
        asker.locator(f'#access-form input[name="field"][value="{field}"]').check()
    asker.get_by_label("期限（天，可留空）").fill("30")
    asker.get_by_role("button", name="提交申请").click()
    asker.wait_for_selector("#access-asked")
    mine = asker.locator("#my-access tbody tr")
    assert mine.count() == 1 and mine.locator("[data-status]").get_attribute("data-status") == "pending"
    assert asker.locator("#access-request").count() == 0  # asked: no second form while it waits
    second = {"dataset": console["urn"], "application": f"bulk_{RUN}", "purpose": "全部导出", "fields": ["phone"]}
    requester = httpx.Client(base_url=console["base"], headers=login(console["base"], REQUESTER), timeout=60)
    assert requester.post("/access-requests", json=second).status_code == 201  # another, through the API
    requester.close()

    owner, owner_problems = _signed_in(browser, console, OWNER)
    _dataset(owner, console)
    assert owner.locator("#access-request").count() == 0  # the owning group's member is offered no form
    owner.locator("#access-waiting a").click()
    assert owner.locator("#waiting-count").inner_text() == "2"
    bulk = owner.locator(".access-decision", has_text=f"bulk_{RUN}")
    bulk.get_by_label("审批意见").fill("用途不明")
    bulk.get_by_role("button", name="驳回").click()
    owner.wait_for_selector("#access-decided")
    assert owner.locator("#access-decided").get_attribute("data-status") == "rejected"
    assert owner.locator("#issued-key").count() == 0
    request = owner.locator(".access-decision").first
    request.wait_for()
    assert "核对人员信息" in request.inner_text() and REQUESTER in request.inner_text()
    request.locator('input[name="grant"][value="phone"]').uncheck()
    request.get_by_label("审批意见").fill("电话不需要")
    owner.screenshot(path=str(shots / "access-waiting.png"), full_page=True)
    request.get_by_role("button", name="批准").click()
    owner.wait_for_selector("#access-decided")
    assert "id, name" in owner.locator("#access-decided").inner_text()
    assert owner.locator("#issued-key").inner_text().startswith("hls_")  # the app key, shown once
    decided = owner.locator("#decided-table tbody tr", has_text=f"checks_{RUN}")
    assert decided.locator("[data-status]").get_attribute("data-status") == "approved"
    assert urlparse(owner.url).path == "/console/catalog/access-requests"  # Post/Redirect/Get
    owner.reload()  # decides nothing again, and the key is not shown again
    owner.wait_for_selector("#decided-table")
    assert owner.locator("#access-decided").count() == 0 and owner.locator("#issued-key").count() == 0
    audit = httpx.get(
        console["base"] + "/audit",
        headers=console["op"],
        params={"action": "services.access_request.*", "actor": OWNER},
        timeout=60,
    ).json()
    assert sorted(e["action"] for e in audit) == [  # one decision each, the reload added none
        "services.access_request.approve",
        "services.access_request.reject",
    ], audit
    owner.goto("/console/catalog/access-requests")  # the key is not shown again
    assert owner.locator("#issued-key").count() == 0 and owner.locator("#waiting-none").is_visible()

    _dataset(asker, console)
    rejected = asker.locator("#my-access tbody tr", has_text=f"bulk_{RUN}")
    assert rejected.locator("[data-status]").inner_text() == "已驳回"
    assert rejected.locator(".comment").inner_text() == "用途不明"
    row = asker.locator("#my-access tbody tr", has_text=f"checks_{RUN}")
    assert row.locator("[data-status]").inner_text() == "已批准"
    assert row.locator(".granted").inner_text() == "id, name" and row.locator(".comment").inner_text() == "电话不需要"
    assert asker.locator("#access-request").count() == 0  # approved: nothing more to ask
    asker.screenshot(path=str(shots / "access-decided.png"), full_page=True)
    asker.goto("/console/catalog/access-requests")
    statuses = asker.locator("#mine-table tbody tr [data-status]").evaluate_all("es => es.map(e => e.dataset.status)")
    assert sorted(statuses) == ["approved", "rejected"]
    assert not asker_problems, asker_problems
    assert not owner_problems, owner_problems
    asker.context.close()
    owner.context.close()
