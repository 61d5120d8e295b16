"""The console's data standards pages (数据标准, issue 18) in a real browser (Chromium, as
tests/test_console_browser.py), over the standards API of a real API process.

Set up through the API: a code set and a data element published by a review, then the element
changed (a second, draft version). In the browser the author lists the elements, opens one (its
attributes and versions) and compares v1 and v2; opens the code set's items; imports an Excel
workbook with a bad row (the row-by-row report, in Chinese, nothing imported), then a good one
(its drafts in a new review); tries to approve the own review (the API's refusal, in Chinese);
the reviewer approves it; a developer (no standards:review) sees no approve button.
Screenshots: <pytest tmp>/standards-shots/.
"""

from __future__ import annotations

import io
import uuid
from pathlib import Path

import httpx
import pytest
from openpyxl import Workbook

from tests.api_process import start_api, stop_api
from tests.conftest import PORT_BASE
from tests.support.console import chromium_browser, new_page, sign_in  # noqa: F401  (fixture `browser`)
from tests.support.identity import PASSWORD, login, make_user

pytestmark = pytest.mark.integration  # starts an API process of its own and a browser

RUN = uuid.uuid4().hex[:6]
TENANT = f"stc{RUN}"
AUTHOR, REVIEWER, DEV = f"stc-author-{RUN}", f"stc-reviewer-{RUN}", f"stc-dev-{RUN}"
HEADER = ["代码", "中文名称", "英文名称", "数据类型", "长度", "分类"]
GOOD = [["age_years", "年龄", "age", "integer", None, "basic"], ["full_name", "姓名", "name", "string", 50, "basic"]]
BAD = [GOOD[0], ["full_name", "姓名", "name", "text", 50, "basic"]]  # row 3: no such data type


def _workbook(rows: list[list]) -> bytes:
    wb = Workbook()
    ws = wb.active
    ws.title = "数据元"
    ws.append(HEADER)
    for row in rows:
        ws.append(row)
    out = io.BytesIO()
    wb.save(out)
    return out.getvalue()


@pytest.fixture(scope="module")
def console(stack_settings):
    proc, base = start_api(stack_settings, port=PORT_BASE + 430)
    key = (stack_settings.state_dir / "api_key").read_text().strip()
    try:
        make_user(base, key, AUTHOR, ["admin"], tenant=TENANT)
        make_user(base, key, REVIEWER, ["admin"], tenant=TENANT)
        make_user(base, key, DEV, ["developer"], tenant=TENANT)
        author = httpx.Client(base_url=base, headers=login(base, AUTHOR), timeout=60)
        reviewer = httpx.Client(base_url=base, headers=login(base, REVIEWER), timeout=60)
        assert author.post("/standards/categories", json={"code": "basic", "name": "基础类"}).status_code == 201
        items = [{"code": "1", "label": "男性"}, {"code": "2", "label": "女性"}]
        r = author.post("/standards/code-sets", json={"code": "gender", "name": "性别代码", "items": items})
        assert r.status_code == 201, r.text
        element = {"code": "gender_code", "name_zh": "性别代码", "data_type": "string", "length": 1}
        r = author.post("/standards/elements", json={**element, "code_set": "gender", "category": "basic"})
        assert r.status_code == 201, r.text
        items = [{"kind": "code_set", "code": "gender"}, {"kind": "element", "code": "gender_code"}]
        rid = author.post("/standards/reviews", json={"title": "性别", "items": items}).json()["id"]
        r = reviewer.post(f"/standards/reviews/{rid}/decision", json={"approve": True})
        assert r.status_code == 200, r.text
        r = author.patch("/standards/elements/gender_code", json={"definition": "人的性别（GB/T 2261.1）"})
        assert r.status_code == 200 and r.json()["version"] == 2, r.text
        yield {"base": base}
    finally:
        stop_api(proc)


@pytest.fixture(scope="module")
def shots(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("standards-shots")


def _signed_in(browser, console, user: str):
    page, problems = new_page(browser, console)
    sign_in(page, user, PASSWORD)
    page.wait_for_url("**/console/")
    return page, problems


def test_elements_versions_diff_and_code_set(browser, console, shots):
    page, problems = _signed_in(browser, console, AUTHOR)
    page.get_by_role("link", name="数据标准").click()
    page.wait_for_selector("#standards-table")
    row = page.locator('#standards-table tr[data-code="gender_code"]')
    assert row.locator("[data-status]").get_attribute("data-status") == "draft"
    page.screenshot(path=str(shots / "elements.png"), full_page=True)
    row.get_by_role("link", name="gender_code").click()
    page.wait_for_selector("#attrs-table")
    assert page.locator('#attrs-table tr[data-attr="code_set"] td').inner_text() == "gender"
    assert page.locator("#versions-table tbody tr").evaluate_all("rs => rs.map(r => r.dataset.version)") == ["1", "2"]
    page.locator("#diff-show").click()
    changed = page.locator('#diff-table tr[data-name="definition"]')
    changed.wait_for()
    assert "人的性别（GB/T 2261.1）" in changed.inner_text() and "定义" in changed.inner_text()
    page.screenshot(path=str(shots / "element-diff.png"), full_page=True)

    page.get_by_role("link", name="代码集", exact=True).click()
    page.locator('#standards-table tr[data-code="gender"] a').click()
    page.wait_for_selector("#items-table")
    assert page.locator("#items-table tbody tr").evaluate_all("rs => rs.map(r => r.dataset.item)") == ["1", "2"]
    assert not problems, problems
    page.context.close()


def test_excel_import_report_then_review_refused_for_the_author_and_approved(browser, console, shots):
    page, problems = _signed_in(browser, console, AUTHOR)
    page.goto("/console/standards/import")
    page.set_input_files(
        "#import-file", files=[{"name": "bad.xlsx", "mimeType": "application/octet-stream", "buffer": _workbook(BAD)}]
    )
    page.get_by_role("button", name="导入").click()
    page.wait_for_selector("#import-report")
    rows = page.locator("#import-report tbody tr")
    assert rows.count() >= 1 and rows.first.get_attribute("data-row") == "3"
    assert "data_type" in rows.first.inner_text()
    assert "未导入任何内容" in page.locator("#import-error").inner_text()  # the API's Chinese message
    page.screenshot(path=str(shots / "import-report.png"), full_page=True)
    assert problems == ["Failed to load resource: the server responded with a status of 422 (Unprocessable Entity)"]
    problems.clear()  # the refused import answers with the API's status: the only expected error
    r = httpx.get(console["base"] + "/standards/elements/age_years", headers=login(console["base"], AUTHOR))
    assert r.status_code == 404  # nothing was imported

    page.set_input_files(
        "#import-file", files=[{"name": "good.xlsx", "mimeType": "application/octet-stream", "buffer": _workbook(GOOD)}]
    )
    page.get_by_label("标题").fill("导入两项")
    page.get_by_role("button", name="导入").click()
    page.wait_for_selector("#import-done")
    page.locator("#import-done a").click()
    row = page.locator("#reviews-table tbody tr", has_text="导入两项")
    row.wait_for()
    rid = row.get_attribute("data-review")
    row.get_by_role("button", name="通过").click()  # the author's own review: the API refuses
    refusal = page.locator(f"#review-{rid} .error")
    refusal.wait_for()
    assert "不允许审核" in refusal.inner_text(), refusal.inner_text()
    page.screenshot(path=str(shots / "review-refused.png"), full_page=True)
    assert not problems, problems
    page.context.close()

    page, problems = _signed_in(browser, console, DEV)
    page.goto("/console/standards/reviews")
    page.wait_for_selector(f"#review-{rid}")
    assert page.locator(f"#review-{rid} button").count() == 0  # no standards:review: no buttons
    page.context.close()

    page, problems = _signed_in(browser, console, REVIEWER)
    page.goto("/console/standards/reviews")
    page.locator(f"#review-{rid}").get_by_label("审核意见").fill("同意")
    page.locator(f"#review-{rid}").get_by_role("button", name="通过").click()
    page.wait_for_selector(f'#review-{rid} [data-status="approved"]')
    page.screenshot(path=str(shots / "review-approved.png"), full_page=True)
    page.goto("/console/standards?kind=element&status=published")
    assert page.locator('#standards-table tr[data-code="age_years"]').count() == 1
    assert not problems, problems
    page.context.close()


def test_create_edit_submit_and_retire_through_the_forms(browser, console, shots):
    """A developer (standards:manage) creates a data element through the form (the API's problems
    next to their fields, in Chinese, first), edits the draft, submits it; once approved, the
    reviewer retires it; a code set's bad item line is named by its line."""
    code = f"height_{RUN}"
    page, problems = _signed_in(browser, console, DEV)
    page.goto("/console/standards?kind=element")
    page.locator("#standard-new").click()
    page.get_by_label("代码", exact=True).fill(code)
    page.get_by_label("长度", exact=True).fill("三")
    page.get_by_role("button", name="保存草稿").click()
    page.wait_for_selector("#err-name_zh")
    assert "不能为空" in page.locator("#err-name_zh").inner_text()
    assert "应为整数" in page.locator("#err-length").inner_text()
    assert page.get_by_label("代码", exact=True).input_value() == code  # what was typed is kept
    page.screenshot(path=str(shots / "element-form-errors.png"), full_page=True)
    problems.clear()  # the refused form answers with the API's 422
    page.get_by_label("中文名称").fill("身高")
    page.get_by_label("长度", exact=True).fill("3")
    page.get_by_label("数据类型").select_option("integer")
    page.get_by_role("button", name="保存草稿").click()
    page.wait_for_selector("#standard-done")
    assert page.locator("#standard-status").get_attribute("data-status") == "draft"

    page.locator("#standard-edit").click()
    assert page.get_by_label("中文名称").input_value() == "身高"
    page.get_by_label("英文名称").fill("height")
    page.get_by_role("button", name="保存草稿").click()
    page.wait_for_selector("#standard-done")
    assert page.locator('#attrs-table tr[data-attr="name_en"] td').inner_text() == "height"
    assert page.locator("#versions-table tbody tr").count() == 1  # a draft is edited in place
    page.locator("#standard-submit").click()
    page.wait_for_selector("#standard-done")
    assert page.locator("#standard-status").get_attribute("data-status") == "in_review"

    reviewer = httpx.Client(base_url=console["base"], headers=login(console["base"], REVIEWER), timeout=60)
    waiting = reviewer.get("/standards/reviews", params={"status": "open"}).json()
    rid = next(r["id"] for r in waiting if code in str(r.get("items")))
    assert reviewer.post(f"/standards/reviews/{rid}/decision", json={"approve": True}).status_code == 200
    page.reload()
    assert page.locator("#standard-status").get_attribute("data-status") == "published"
    assert page.locator("#standard-retire").count() == 0  # retiring needs standards:review

    page.goto("/console/standards/edit?kind=code_set")
    page.get_by_label("代码", exact=True).fill(f"yesno_{RUN}")
    page.get_by_label("名称", exact=True).fill("是否")
    page.get_by_label("代码项（每行一项：代码, 名称[, 上级代码]）").fill("1, 是\n2")
    page.get_by_role("button", name="保存草稿").click()
    page.wait_for_selector("#err-items")
    assert page.locator("#err-items").inner_text().startswith("第 2 行")
    assert not [p for p in problems if "422" not in p], problems
    page.context.close()

    page, problems = _signed_in(browser, console, REVIEWER)
    page.goto(f"/console/standards/element/{code}")
    page.locator("#standard-retire").click()
    page.wait_for_selector("#standard-done")
    assert page.locator("#standard-status").get_attribute("data-status") == "retired"
    page.screenshot(path=str(shots / "element-retired.png"), full_page=True)
    assert not problems, problems
    page.context.close()
