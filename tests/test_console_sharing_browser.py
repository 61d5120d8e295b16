"""The console's sensitive-data detection page (issue 17) in a real browser (Chromium, as
tests/test_console_browser.py): a steward opens a catalogued ClickHouse table's detection page
from its dataset page, scans it, sees the citizen ID and phone columns proposed with their match
ratio and masked examples (never a clear value) and the random-digit column among the clear ones,
lowers one proposed level, confirms, and lands on the dataset page with the levels saved in the
catalogue; a viewer sees the proposals without the confirm button. Screenshots: <pytest tmp>/detection-shots/.
"""

from __future__ import annotations

import uuid
from pathlib import Path

import httpx
import pytest

from tests.api_process import start_api, stop_api
from tests.conftest import PORT_BASE
from tests.support.console import chromium_browser, new_page, sign_in  # noqa: F401  (fixture `browser`)
from tests.support.identity import PASSWORD, login, make_user
from tests.support.sensitive import drop_table, people_table

pytestmark = pytest.mark.integration  # starts an API process of its own and a browser

RUN = uuid.uuid4().hex[:6]
TENANT = f"sdb{RUN}"
STEWARD, VIEWER = f"sd-steward-{RUN}", f"sd-viewer-{RUN}"
TABLE = f"sdb_people_{RUN}"


@pytest.fixture(scope="module")
def console(stack_settings):
    proc, base = start_api(stack_settings, port=PORT_BASE + 440)
    from api.auth import api_key_for

    key = api_key_for(stack_settings)
    try:
        make_user(base, key, STEWARD, ["admin"], tenant=TENANT)
        make_user(base, key, VIEWER, ["viewer"], tenant=TENANT)
        urn = people_table(stack_settings, TENANT, TABLE)
        yield {"base": base, "urn": urn}
    finally:
        stop_api(proc)
        drop_table(stack_settings, TABLE)


@pytest.fixture(scope="module")
def shots(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("detection-shots")


def _signed_in(browser, console, user: str):
    page, problems = new_page(browser, console)
    sign_in(page, user, PASSWORD)
    page.wait_for_url("**/console/")
    return page, problems


def test_a_steward_scans_and_confirms_levels_into_the_catalogue(browser, console, shots):
    from urllib.parse import quote

    page, problems = _signed_in(browser, console, STEWARD)
    page.goto(f"/console/catalog/dataset?urn={quote(console['urn'], safe='')}")
    page.locator("#dataset-detection").click()
    page.wait_for_url("**/console/catalog/detection?**")
    page.locator("#detection-scan").click()
    page.locator("#detection-table, #detection-error").first.wait_for()
    assert page.locator("#detection-error").count() == 0, page.locator("#detection-error").inner_text()
    table = page.locator("#detection-table")
    page.screenshot(path=str(shots / "detection-zh.png"), full_page=True)
    rows = {r.get_attribute("data-field"): r for r in table.locator("tbody tr").all()}
    assert {"id_number", "phone", "name", "address"} <= set(rows)
    assert "公民身份号码" in rows["id_number"].locator(".kind").inner_text()
    assert rows["id_number"].locator(".ratio").inner_text().startswith("100%")
    examples = rows["id_number"].locator(".examples").inner_text()
    assert examples.count("********") == 3  # 370102********1234: masked, never clear
    assert rows["phone"].locator("select").input_value() == "sensitive"
    assert "serial" in page.locator("#detection-clear").inner_text()
    rows["phone"].locator("select").select_option("internal")
    rows["address"].locator("input[type=checkbox]").uncheck()
    page.locator("#detection-confirm").click()
    page.wait_for_url("**/console/catalog/dataset?**")
    assert not problems, problems
    token = login(console["base"], STEWARD)
    ds = httpx.get(f"{console['base']}/metadata/datasets/{console['urn']}", headers=token, timeout=60).json()
    levels = {f["name"]: f["business"].get("classification") for f in ds["fields"]}
    assert levels["id_number"] == "secret" and levels["phone"] == "internal"
    assert levels["address"] is None and levels["serial"] is None


def test_a_viewer_sees_the_page_without_confirming(browser, console):
    from urllib.parse import quote

    page, problems = _signed_in(browser, console, VIEWER)
    page.goto(f"/console/catalog/detection?urn={quote(console['urn'], safe='')}")
    page.locator("#detection-scan").click()
    error = page.locator("#detection-error")
    error.wait_for()
    assert "metadata:manage" in error.inner_text(), error.inner_text()  # the API's refusal, shown
    assert page.locator("#detection-confirm").count() == 0
