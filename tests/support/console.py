"""The console in a real browser: Debian's Chromium (installed by `huiliu servers prepare`;
Playwright never downloads its own), the launch options, a page at 1366x768 in Chinese that
collects script errors, and signing in through the form. Fixture `browser` (module scope): test
modules import `chromium_browser`, which provides it."""

from __future__ import annotations

from pathlib import Path

import pytest

CHROMIUM = "/usr/bin/chromium"
ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
VIEWPORT = {"width": 1366, "height": 768}


@pytest.fixture(scope="module", name="browser")
def chromium_browser():
    from playwright.sync_api import sync_playwright

    if not Path(CHROMIUM).exists():
        pytest.fail(f"{CHROMIUM} is missing: run `huiliu servers prepare` (installs chromium and fonts-noto-cjk)")
    with sync_playwright() as p:
        chromium = p.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        yield chromium
        chromium.close()


def new_page(browser, console: dict):
    """A page of its own browser context on `console["base"]`, and the list its script errors go to."""
    context = browser.new_context(
        viewport=VIEWPORT, base_url=console["base"], locale="zh-CN", timezone_id="Asia/Shanghai"
    )
    page = context.new_page()
    page.set_default_timeout(30_000)  # a shared 2-core machine: sign-in hashing can queue
    problems: list[str] = []
    page.on("console", lambda m: problems.append(m.text) if m.type == "error" else None)
    page.on("pageerror", lambda e: problems.append(str(e)))
    return page, problems


def sign_in(page, user: str, password: str) -> None:
    page.goto("/console/login")
    page.get_by_label("用户名").fill(user)
    page.get_by_label("密码").fill(password)
    page.get_by_role("button", name="登录").click()
