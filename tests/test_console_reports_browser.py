"""The console's quality report and scorecard pages (质量报告 / 质量评分卡, issue 16) in a real
browser (Chromium, as tests/test_console_browser.py): known metric rows in ClickHouse; an admin
builds a monthly report from the form, lands on it (figures, three ECharts charts drawn, top tables
and causes), downloads its PDF through the console, sees it in the list, opens the scorecards by
system; an empty target for a system report shows the API's refusal; a viewer is refused; another
tenant's report is not found. Screenshots: <pytest tmp>/report-shots/."""

from __future__ import annotations

import datetime as dt
import io
import uuid

import httpx
import pytest
from pypdf import PdfReader

from tests.api_process import start_api, stop_api
from tests.conftest import PORT_BASE
from tests.support.console import chromium_browser, new_page, sign_in  # noqa: F401  (fixture `browser`)

pytestmark = pytest.mark.integration  # starts an API process of its own and a browser

PASSWORD = "Report-Console-Pass-42"
RUN = uuid.uuid4().hex[:6]
TENANT, OTHER_TENANT = f"rpc-{RUN}", f"rpc-b-{RUN}"
ADMIN, VIEWER, OTHER = f"rpc-admin-{RUN}", f"rpc-viewer-{RUN}", f"rpc-other-{RUN}"


@pytest.fixture(scope="module")
def console(stack_settings):
    from quality_stream.metrics.schema import RAW, ensure_tables
    from sinks.clickhouse import client_from_url

    today = dt.datetime.now(dt.UTC).date()
    rows = [
        (
            dt.datetime.combine(today - dt.timedelta(days=d), dt.time(9)),
            TENANT,
            "p",
            system,
            f"huiliu.{system}.public.t",
            rule,
            dim,
            msg,
            1000,
            failed,
        )
        for d, system, rule, dim, msg, failed in (
            (3, "reg", "gender", "validity", "性别代码无效", 40),
            (2, "reg", "name_required", "completeness", "姓名必填", 10),
            (1, "tax", "credit_code", "validity", "统一社会信用代码无效", 300),
        )
    ]
    ch = client_from_url(stack_settings.clickhouse_url)
    ensure_tables(ch)
    ch.execute(f"INSERT INTO {RAW} VALUES", rows)
    ch.disconnect()
    proc, base = start_api(stack_settings, port=PORT_BASE + 185)
    op = {"X-API-Key": (stack_settings.state_dir / "api_key").read_text().strip()}
    for name, role, tenant in ((ADMIN, "admin", TENANT), (VIEWER, "viewer", TENANT), (OTHER, "admin", OTHER_TENANT)):
        r = httpx.post(
            base + "/users",
            headers=op,
            json={"username": name, "password": PASSWORD, "roles": [role], "tenant": tenant},
        )
        assert r.status_code == 201, r.text
    yield {"base": base}
    stop_api(proc)


@pytest.fixture(scope="module")
def shots(tmp_path_factory):
    return tmp_path_factory.mktemp("report-shots")


def test_build_view_download_and_scorecards(browser, console, shots):
    page, problems = new_page(browser, console)
    sign_in(page, ADMIN, PASSWORD)
    page.goto("/console/quality/reports")
    assert page.get_by_role("link", name="质量报告").count() >= 1  # in the navigation
    page.locator("#report-period").select_option("monthly")
    page.locator("#report-build").click()
    page.wait_for_url("**/console/quality/reports/*")
    figures = page.locator("#report-figures")
    assert figures.count() == 1
    assert figures.locator("[data-key=evaluated] dd").inner_text() == "3,000"
    assert figures.locator("[data-key=failed] dd").inner_text() == "350"
    for chart in ("#chart-dimension", "#chart-trend", "#chart-rule"):
        page.wait_for_selector(f"{chart} canvas")
    assert "统一社会信用代码无效" in page.locator("#report-causes").inner_text()
    assert "huiliu.tax.public.t" in page.locator("#report-tables").inner_text()
    page.screenshot(path=str(shots / "report.png"), full_page=True)
    report_url = page.url
    with page.expect_download() as download:
        page.locator("#report-pdf").click()
    pdf = PdfReader(io.BytesIO(open(download.value.path(), "rb").read()))
    text = "\n".join(p.extract_text() for p in pdf.pages)
    assert "数据质量报告" in text and "3000" in text and "350" in text

    page.goto("/console/quality/reports")
    assert page.locator("#reports-table tbody tr").count() >= 1
    assert not problems, problems
    page.locator("#report-kind").select_option("system")
    page.locator("#report-build").click()  # no target: the API's refusal is shown by the form
    assert "target" in page.locator("#report-form-error").inner_text()
    assert problems == ["Failed to load resource: the server responded with a status of 422 (Unprocessable Entity)"]
    problems.clear()

    page.goto("/console/quality/scorecards?by=system")
    page.wait_for_selector("#chart-scores canvas")
    rows = page.locator("#scorecards-table tbody tr")
    assert rows.first.get_attribute("data-key") == "tax"  # worst first
    assert page.locator('tr[data-key="tax"] td.score').inner_text() == "70.0"
    page.screenshot(path=str(shots / "scorecards.png"), full_page=True)
    assert not problems, problems

    other, _ = new_page(browser, console)
    sign_in(other, OTHER, PASSWORD)
    r = other.goto(report_url)
    assert r.status == 404 and other.locator("#report-error").count() == 1
    viewer, _ = new_page(browser, console)
    sign_in(viewer, VIEWER, PASSWORD)
    r = viewer.goto("/console/quality/reports")
    assert r.status == 403 and viewer.locator("#reports-error").count() == 1
