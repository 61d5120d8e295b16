"""The console's administration pages (系统管理, issue 18) in a real browser (Chromium, as
tests/test_console_browser.py) over the identity, audit and log APIs of a real API process.

A tenant admin creates a user (a weak password first: the API's refusal next to the form), a role,
a group and an API key (shown once: not on the next visit nor when the page is reloaded, which creates
no second key; it works until revoked), disables the
user, finds the key's creation in the audit log and searches the system log; a viewer (no
users:manage) gets the API's refusal and no forms. Screenshots: <pytest tmp>/admin-shots/.
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

pytestmark = pytest.mark.integration  # starts an API process of its own and a browser

RUN = uuid.uuid4().hex[:6]
TENANT = f"adm{RUN}"
ADMIN, VIEWER, NEW = f"adm-admin-{RUN}", f"adm-viewer-{RUN}", f"adm-new-{RUN}"
EDITED = f"adm-edited-{RUN}"


@pytest.fixture(scope="module")
def console(stack_settings):
    proc, base = start_api(stack_settings, port=PORT_BASE + 440)
    key = (stack_settings.state_dir / "api_key").read_text().strip()
    try:
        make_user(base, key, ADMIN, ["admin"], tenant=TENANT)
        make_user(base, key, VIEWER, ["viewer"], tenant=TENANT)
        make_user(base, key, EDITED, ["viewer"], tenant=TENANT)
        yield {"base": base}
    finally:
        stop_api(proc)


@pytest.fixture(scope="module")
def shots(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("admin-shots")


def _signed_in(browser, console, user: str):
    page, problems = new_page(browser, console)
    sign_in(page, user, PASSWORD)
    page.wait_for_url("**/console/")
    return page, problems


def _names(page) -> list[str]:
    return page.locator("#admin-table tbody tr").evaluate_all("rs => rs.map(r => r.dataset.name)")


def test_users_roles_groups_and_a_key_shown_once(browser, console, shots):
    page, problems = _signed_in(browser, console, ADMIN)
    page.get_by_role("link", name="系统管理").click()
    page.wait_for_selector("#admin-table")
    assert {ADMIN, VIEWER} <= set(_names(page))

    page.get_by_label("用户名").fill(NEW)
    page.get_by_label("密码", exact=True).fill("short")
    page.get_by_label("角色（逗号分隔）").fill("viewer")
    page.get_by_role("button", name="创建").click()
    page.wait_for_selector("#form-error")
    assert NEW not in _names(page) and page.get_by_label("用户名").input_value() == NEW  # the form is kept
    problems.clear()  # the refused form answers with the API's 422
    page.get_by_label("密码", exact=True).fill("Maple-Harbour-7734-Quill")
    page.get_by_role("button", name="创建").click()
    page.wait_for_selector("#created")
    row = page.locator(f'#admin-table tr[data-name="{NEW}"]')
    assert "viewer" in row.inner_text()
    row.get_by_role("button", name=f"停用 {NEW}").click()
    page.wait_for_selector(f'#admin-table tr[data-name="{NEW}"] [data-disabled="true"]')
    page.screenshot(path=str(shots / "users.png"), full_page=True)

    page.get_by_role("link", name="角色", exact=True).click()
    page.get_by_label("名称").fill(f"auditor{RUN}")
    page.get_by_label("权限（逗号分隔，如 pipeline:view）").fill("audit:view, pipeline:view")
    page.get_by_role("button", name="创建").click()
    page.wait_for_selector(f'#admin-table tr[data-name="auditor{RUN}"]')
    assert "audit:view" in page.locator(f'#admin-table tr[data-name="auditor{RUN}"]').inner_text()
    assert page.locator('#admin-table tr[data-name="admin"] .badge').first.inner_text() == "内置"

    page.get_by_role("link", name="用户组").click()
    page.get_by_label("名称").fill(f"stewards{RUN}")
    page.get_by_label("角色（逗号分隔）").fill(f"auditor{RUN}")
    page.get_by_role("button", name="创建").click()
    page.wait_for_selector(f'#admin-table tr[data-name="stewards{RUN}"]')

    page.get_by_role("link", name="API 密钥").click()
    page.get_by_label("名称").fill(f"etl{RUN}")
    page.get_by_label("角色（逗号分隔）").fill("viewer")
    page.get_by_role("button", name="创建").click()
    page.wait_for_selector("#key-created")
    key = page.locator("#new-key").input_value()
    page.screenshot(path=str(shots / "api-key-created.png"), full_page=True)
    assert page.url.endswith("/console/admin/api-keys")  # Post/Redirect/Get: reloading creates no second key
    page.reload()
    page.wait_for_selector("#admin-table")
    assert page.locator(f'#admin-table tr[data-name="etl{RUN}"]').count() == 1
    assert page.locator("#key-created").count() == 0 and key not in page.content()
    assert httpx.get(console["base"] + "/pipelines", headers={"X-API-Key": key}).status_code == 200
    page.get_by_role("link", name="API 密钥").click()  # shown once: not on the next visit
    page.wait_for_selector("#admin-table")
    assert page.locator("#key-created").count() == 0 and key not in page.content()
    page.get_by_role("button", name=f"吊销 etl{RUN}").click()
    page.wait_for_selector(f'#admin-table tr[data-name="etl{RUN}"] [data-revoked="true"]')
    assert httpx.get(console["base"] + "/pipelines", headers={"X-API-Key": key}).status_code == 401

    page.get_by_role("link", name="审计日志").click()
    page.get_by_label("操作", exact=True).fill("api_key.*")
    page.get_by_role("button", name="查询").click()
    page.wait_for_selector("#audit-table")
    actions = page.locator("#audit-table tbody tr").evaluate_all("rs => rs.map(r => r.dataset.action)")
    assert "api_key.create" in actions and set(actions) <= {a for a in actions if a.startswith("api_key.")}
    page.screenshot(path=str(shots / "audit.png"), full_page=True)

    page.get_by_role("link", name="系统日志").click()
    page.get_by_role("button", name="查询").click()
    page.wait_for_url("**/console/admin/logs?**")
    assert page.locator("#admin-error").count() == 0
    assert page.locator("#logs-table").count() + page.locator("#logs-none").count() == 1
    page.screenshot(path=str(shots / "logs.png"), full_page=True)
    assert not problems, problems
    page.context.close()


def test_a_viewer_gets_the_refusal_and_no_forms(browser, console, shots):
    page, problems = _signed_in(browser, console, VIEWER)
    page.goto("/console/admin/users")
    refusal = page.locator("#admin-error")
    assert "需要 users:manage 权限" in refusal.inner_text(), refusal.inner_text()  # the API's refusal, in Chinese
    assert page.locator("#create-form").count() == 0
    page.screenshot(path=str(shots / "viewer-refused.png"), full_page=True)
    page.context.close()


def test_an_admin_edits_a_users_roles_and_their_next_page_shows_it(browser, console, shots):
    """The edited person's session ends (roles changed: the API refuses the old token) and, signed in
    again, they reach what the new role allows; a group's members and a role's permissions are
    edited the same way, a weak new password is refused next to the form."""
    user, user_problems = _signed_in(browser, console, EDITED)
    user.goto("/console/admin/users")
    assert "需要 users:manage 权限" in user.locator("#admin-error").inner_text()
    user_problems.clear()  # the refused page answers with the API's 403

    page, problems = _signed_in(browser, console, ADMIN)
    page.goto("/console/admin/users")
    page.get_by_role("link", name=f"编辑 {EDITED}").click()
    page.wait_for_selector("#edit-form")
    assert page.get_by_label("角色（逗号分隔）").input_value() == "viewer"
    page.get_by_label("新密码（留空则不修改）").fill("short")
    page.get_by_role("button", name="保存").click()
    page.wait_for_selector("#form-error")  # the API's 422, the typed values kept
    problems.clear()
    page.get_by_label("新密码（留空则不修改）").fill("")
    page.get_by_label("显示名称").fill("改过的名字")
    page.get_by_label("角色（逗号分隔）").fill("viewer, admin")
    page.get_by_role("button", name="保存").click()
    page.wait_for_selector("#saved")
    page.screenshot(path=str(shots / "user-edited.png"), full_page=True)
    page.goto("/console/admin/users")
    row = page.locator(f'#admin-table tr[data-name="{EDITED}"]')
    assert "admin" in row.inner_text() and "改过的名字" in row.inner_text()

    user.goto("/console/admin/users")  # the old session ends: the roles changed
    user.wait_for_url("**/console/login**")
    user.get_by_label("用户名").fill(EDITED)
    user.get_by_label("密码").fill(PASSWORD)
    user.get_by_role("button", name="登录").click()
    user.wait_for_url("**/console/admin/users")  # signed in again, back where they were going
    user.wait_for_selector("#admin-table")
    assert user.locator("#admin-error").count() == 0 and user.locator("#create-form").count() == 1
    assert not user_problems, user_problems
    user.context.close()

    page.get_by_role("link", name="用户组").click()
    page.get_by_label("名称").fill(f"editors{RUN}")
    page.get_by_label("角色（逗号分隔）").fill("viewer")
    page.get_by_role("button", name="创建").click()
    page.get_by_role("link", name=f"编辑 editors{RUN}").click()
    page.get_by_label("成员（用户名，逗号分隔）").fill(EDITED)
    page.get_by_label("说明").fill("编辑组")
    page.get_by_role("button", name="保存").click()
    page.wait_for_selector("#saved")
    assert page.get_by_label("成员（用户名，逗号分隔）").input_value() == EDITED
    page.get_by_label("成员（用户名，逗号分隔）").fill("")
    page.get_by_role("button", name="保存").click()
    page.wait_for_selector("#saved")
    assert page.get_by_label("成员（用户名，逗号分隔）").input_value() == ""

    page.get_by_role("link", name="角色", exact=True).click()
    page.get_by_label("名称").fill(f"readers{RUN}")
    page.get_by_label("权限（逗号分隔，如 pipeline:view）").fill("pipeline:view")
    page.get_by_role("button", name="创建").click()
    page.get_by_role("link", name=f"编辑 readers{RUN}").click()
    page.get_by_label("权限（逗号分隔，如 pipeline:view）").fill("pipeline:view, audit:view")
    page.get_by_role("button", name="保存").click()
    page.wait_for_selector("#saved")
    page.screenshot(path=str(shots / "role-edited.png"), full_page=True)
    page.get_by_role("link", name="角色", exact=True).click()
    assert "audit:view" in page.locator(f'#admin-table tr[data-name="readers{RUN}"]').inner_text()
    assert not problems, problems
    page.context.close()


def test_a_users_notice_email_and_language_created_and_edited(browser, console, shots):
    """The user forms take the notice address and language (ticket mail): a mistyped address is
    refused next to its field in the page's language (Chinese, then English), nothing saved; a good
    one is created, shown in the edit form, changed and cleared, as the API stores it."""
    person = f"adm-mail-{RUN}"
    api = httpx.Client(base_url=console["base"], headers=login(console["base"], ADMIN), timeout=60)
    page, problems = _signed_in(browser, console, ADMIN)
    page.goto("/console/admin/users")
    page.get_by_label("用户名").fill(person)
    page.get_by_label("密码", exact=True).fill("Maple-Harbour-7734-Quill")
    page.get_by_label("电子邮件（接收工单通知）").fill("someone at example")
    page.get_by_label("通知语言").select_option("en")
    page.get_by_role("button", name="创建").click()
    assert "电子邮件地址格式不正确" in page.locator("#f-email-problem").inner_text()
    assert person not in _names(page) and page.get_by_label("通知语言").input_value() == "en"  # the form is kept
    assert api.get(f"/users/{person}").status_code == 404
    problems.clear()  # the refused form answers 422
    page.get_by_label("密码", exact=True).fill("Maple-Harbour-7734-Quill")
    page.get_by_label("电子邮件（接收工单通知）").fill("mail.person@example.com")
    page.get_by_role("button", name="创建").click()
    page.wait_for_selector("#created")
    stored = api.get(f"/users/{person}").json()
    assert (stored["email"], stored["lang"]) == ("mail.person@example.com", "en")

    page.get_by_role("link", name=f"编辑 {person}").click()
    page.wait_for_selector("#edit-form")
    assert page.get_by_label("电子邮件（接收工单通知）").input_value() == "mail.person@example.com"
    assert page.get_by_label("通知语言").input_value() == "en"
    page.get_by_label("电子邮件（接收工单通知）").fill("two@@example.com")
    page.get_by_role("button", name="保存").click()
    assert "电子邮件地址格式不正确" in page.locator("#e-email-problem").inner_text()
    assert page.get_by_label("电子邮件（接收工单通知）").input_value() == "two@@example.com"
    assert api.get(f"/users/{person}").json()["email"] == "mail.person@example.com"  # nothing saved
    page.screenshot(path=str(shots / "user-email-refused.png"), full_page=True)
    problems.clear()
    page.get_by_label("电子邮件（接收工单通知）").fill("desk@example.org")
    page.get_by_label("通知语言").select_option("zh")
    page.get_by_role("button", name="保存").click()
    page.wait_for_selector("#saved")
    assert page.get_by_label("电子邮件（接收工单通知）").input_value() == "desk@example.org"
    stored = api.get(f"/users/{person}").json()
    assert (stored["email"], stored["lang"]) == ("desk@example.org", "zh")

    page.goto(f"/console/admin/users/{person}?lang=en")  # the same refusal in English
    page.get_by_label("E-mail (ticket notices)").fill("no-at-sign")
    page.get_by_role("button", name="Save").click()
    assert "not valid" in page.locator("#e-email-problem").inner_text()
    problems.clear()
    page.get_by_label("E-mail (ticket notices)").fill("")  # emptied: the address is removed
    page.get_by_role("button", name="Save").click()
    page.wait_for_selector("#saved")
    assert not api.get(f"/users/{person}").json()["email"]  # the API keeps it as ""
    page.goto("/console/admin/users?lang=zh-CN")
    assert not problems, problems
    api.close()
    page.context.close()
