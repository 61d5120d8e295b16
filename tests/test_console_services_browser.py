"""The console's data-service pages (数据服务, issue 17) in a real browser (Chromium, as
tests/test_console_browser.py), against an API process of the module's own and the test stack's
ClickHouse and Redis: the author submits a draft for review from the service's page and is refused
as its reviewer (the API's reason shown), another person publishes it; an application is approved
with fewer fields and a daily quota from the page (the key shown once), calls with that key show up
in the monitoring charts (ECharts, from /stats), the top applications and the quota use; the owner
revokes it and the next call is refused; a person with only `services:apply` sees no review or
submit buttons; the pages in English. Screenshots: <pytest tmp>/services-shots/.
"""

from __future__ import annotations

import uuid
from pathlib import Path

import httpx
import pytest

from tests.api_process import start_api, stop_api, wait_for
from tests.conftest import PORT_BASE
from tests.support.console import chromium_browser, new_page, sign_in  # noqa: F401  (fixture `browser`)

pytestmark = pytest.mark.integration  # starts an API process of its own and a browser

PASSWORD = "Services-Console-Pass-42"
RUN = uuid.uuid4().hex[:6]
TENANT = f"svcc-{RUN}"
AUTHOR, REVIEWER, APPLICANT, READER = (f"svc-{k}-{RUN}" for k in ("author", "reviewer", "applicant", "reader"))
SERVICE, TABLE, APP = f"residents_{RUN}", f"ds_console_{RUN}", f"civil_{RUN}"
FIELDS = ["id", "name", "phone", "division_code"]


@pytest.fixture(scope="module")
def console(stack_settings):
    from sinks.clickhouse import client_from_url

    proc, base = start_api(stack_settings, port=PORT_BASE + 186)
    op = {"X-API-Key": (stack_settings.state_dir / "api_key").read_text().strip()}
    role = f"svc_reader_{RUN}"
    r = httpx.post(
        base + "/roles", headers=op, json={"name": role, "permissions": ["services:apply"], "tenant": TENANT}
    )
    assert r.status_code == 201, r.text
    for name, roles in ((AUTHOR, ["admin"]), (REVIEWER, ["admin"]), (APPLICANT, ["admin"]), (READER, [role])):
        r = httpx.post(
            base + "/users", headers=op, json={"username": name, "password": PASSWORD, "roles": roles, "tenant": TENANT}
        )
        assert r.status_code == 201, r.text
    ch = client_from_url(stack_settings.clickhouse_url)
    ch.execute(
        f"CREATE TABLE {TABLE} (id Int64, name String, phone String, division_code String, _version UInt64, "
        "_deleted UInt8) ENGINE = ReplacingMergeTree(_version) ORDER BY id"
    )
    ch.execute(f"INSERT INTO {TABLE} VALUES", [(i, "李四", f"1390000{i:04d}", "370102", 1, 0) for i in range(1, 11)])
    tokens = {
        n: httpx.post(base + "/auth/token", data={"username": n, "password": PASSWORD}).json()["access_token"]
        for n in (AUTHOR, APPLICANT)
    }
    as_author = {"Authorization": f"Bearer {tokens[AUTHOR]}"}
    doc = {
        "name": SERVICE,
        "title": "居民信息服务",
        "resource": {"table": TABLE},
        "fields": FIELDS,
        "filters": [{"field": "id", "ops": ["eq", "range"]}],
        "sort": ["id"],
        "masking": {"phone": "phone"},
        "rate_limit": {"rate": 100, "burst": 100},
    }
    assert httpx.post(base + "/services", headers=as_author, json=doc).status_code == 201
    second = {**doc, "name": f"{SERVICE}b"}
    assert httpx.post(base + "/services", headers=as_author, json=second).status_code == 201
    paged = httpx.get(base + "/services", headers=as_author, params={"limit": 1, "offset": 1})  # a page, by name
    assert [s["name"] for s in paged.json()] == [f"{SERVICE}b"] and paged.headers["x-total-count"] == "2"
    yield {"base": base, "op": op, "tokens": tokens}
    ch.execute(f"DROP TABLE IF EXISTS {TABLE}")
    ch.disconnect()
    stop_api(proc)


@pytest.fixture(scope="module")
def shots(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("services-shots")


def _page(browser, console, user: str):
    page, problems = new_page(browser, console)
    sign_in(page, user, PASSWORD)
    page.wait_for_url("**/console/")
    return page, problems


def test_submit_review_refusal_and_publish(browser, console, shots):
    author, problems = _page(browser, console, AUTHOR)
    author.get_by_role("link", name="数据服务").first.click()
    author.wait_for_url("**/console/services")
    row = author.locator(f'tr[data-service="{SERVICE}"]')
    assert "草稿" in row.inner_text()
    row.get_by_role("link", name=SERVICE).click()
    author.locator("#submit-v1").click()
    author.wait_for_selector('tr[data-version="1"] .badge[data-status="in_review"]')
    author.locator("#publish").click()  # the author is an admin, so the button is there: the API refuses
    refusal = author.locator("#action-error")
    refusal.wait_for()
    assert "作者不能审核" in refusal.inner_text()
    author.screenshot(path=str(shots / "author-refused.png"), full_page=True)
    assert not problems, problems
    author.context.close()

    reviewer, problems = _page(browser, console, REVIEWER)
    reviewer.goto(f"/console/services/{SERVICE}")
    reviewer.locator("#review-comment").fill("字段最小化，同意发布")
    reviewer.locator("#publish").click()
    reviewer.wait_for_selector('tr[data-version="1"] .badge[data-status="published"]')
    assert REVIEWER in reviewer.locator('tr[data-version="1"]').inner_text()
    openapi = reviewer.request.get(f"/console/services/{SERVICE}/v1/openapi.json")
    assert openapi.status == 200 and f"/services/{SERVICE}/v1" in openapi.json()["paths"]
    assert not problems, problems
    reviewer.context.close()


def test_approve_fewer_fields_calls_monitoring_and_revoke(browser, console, shots):
    base, tokens = console["base"], console["tokens"]
    r = httpx.post(
        f"{base}/services/{SERVICE}/applications",
        headers={"Authorization": f"Bearer {tokens[APPLICANT]}"},
        json={"application": APP, "version": 1, "purpose": "低保核查", "fields": FIELDS},
    )
    assert r.status_code == 201, r.text
    app_id = r.json()["id"]
    page, problems = _page(browser, console, AUTHOR)
    page.goto(f"/console/services/{SERVICE}")
    form = page.locator(f"#decide-{app_id}")
    form.locator('input[name="fields"][value="phone"]').uncheck()
    form.locator(f"#rf-{app_id}").fill("division_code=370102")
    form.locator(f"#qd-{app_id}").fill("50")
    form.get_by_role("button", name="批准").click()
    page.locator("#issued-key").wait_for()
    key = page.locator("#issued-key").inner_text().strip()
    assert key.startswith("hls_")
    row = page.locator(f'tr[data-application="{app_id}"]')
    assert "已批准" in row.inner_text() and "phone" not in row.inner_text()
    page.screenshot(path=str(shots / "approved.png"), full_page=True)

    with httpx.Client(base_url=base, headers={"X-App-Key": key}, timeout=30) as c:
        for i in range(6):
            r = c.get(f"/services/{SERVICE}/v1", params={"id": str(i + 1)})
            assert r.status_code == 200 and "phone" not in r.json()["rows"][0], r.text
        assert c.get(f"/services/{SERVICE}/v1", params={"nope": "1"}).status_code == 422

    def logged():
        out = httpx.get(
            f"{base}/services/{SERVICE}/stats",
            headers={"Authorization": f"Bearer {tokens[AUTHOR]}"},
            params={"period": "minute", "hours": 1},
        ).json()
        return out if out.get("calls", 0) >= 7 else None

    wait_for(logged, timeout=20)
    page.goto(f"/console/services/{SERVICE}?period=minute")
    page.wait_for_function("document.getElementById('chart-latency').dataset.series === '3'")
    assert page.locator("#chart-calls").get_attribute("data-series") == "1"
    assert page.locator("#chart-calls canvas").count() == 1
    assert page.locator('#stats-totals [data-key="calls"] dd').inner_text() == "7"
    # the quota counts every authorised call, the one with a bad parameter too
    assert "7 / 50" in page.locator(f'#quotas tr[data-application="{APP}"]').inner_text()
    assert page.locator(f'#top-applications tr[data-application="{APP}"]').count() == 1
    page.screenshot(path=str(shots / "monitoring.png"), full_page=True)

    page.locator(f"#revoke-{app_id}").click()
    page.wait_for_selector(f'tr[data-application="{app_id}"] .badge[data-status="revoked"]')
    r = httpx.get(f"{base}/services/{SERVICE}/v1", headers={"X-App-Key": key}, timeout=30)
    assert r.status_code == 401 and "revoked" in r.json()["detail"]["message"]
    assert not problems, problems
    page.context.close()


def test_buttons_follow_permissions_and_english(browser, console, shots):
    page, problems = _page(browser, console, READER)
    page.goto(f"/console/services/{SERVICE}")
    page.locator("#versions-table").wait_for()
    problems.clear()  # the overview's panels this person may not read (ops:view) answered 403
    page.reload()
    page.locator("#versions-table").wait_for()
    for selector in ("#publish", "#send-back", "#offline-v1", "#submit-v1", "form[id^=decide-]", "[id^=revoke-]"):
        assert page.locator(selector).count() == 0, selector
    # the server refuses what the page does not offer
    refused = page.request.post(
        f"/console/services/{SERVICE}/v1/offline",
        headers={"X-CSRF-Token": page.locator("body").get_attribute("hx-headers").split('"')[3]},
    )
    assert refused.status == 200 and "services:review" in refused.text()
    page.goto("/console/services?lang=en")
    assert page.locator("h1").inner_text() == "Data services"
    assert "Published" in page.locator(f'tr[data-service="{SERVICE}"]').inner_text()
    page.goto(f"/console/services/{SERVICE}")
    assert page.locator("#monitor-h").inner_text() == "Call monitoring"
    page.screenshot(path=str(shots / "reader-en.png"), full_page=True)
    assert not problems, problems
    page.context.close()
