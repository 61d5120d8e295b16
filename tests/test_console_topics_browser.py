"""The console's topic pages (主题, issue 18) in a real browser (Chromium, as
tests/test_console_browser.py): a developer's topic with two partitions and two schema versions
(tests/support/topics.py: produced by the test, harvested and classified through the API).

A developer lists the topics (partitions, end offsets confirmed by the tail read), opens one, sees
the subject's versions and the latest fields, compares v1 and v2 (the added field), browses
partition 0 page by page with htmx (secret field redacted, sensitive one partly hidden), switches
to English; a viewer sees every value masked; another tenant finds no topic and gets the API's
refusal on the topic's page. Screenshots: <pytest tmp>/topics-shots/.
"""

from __future__ import annotations

import uuid
from pathlib import Path

import httpx
import pytest

from deploy.kafka import ensure_topics
from schemas.naming import topic_name
from tests.api_process import start_api, stop_api
from tests.conftest import PORT_BASE
from tests.support.console import chromium_browser, new_page, sign_in  # noqa: F401  (fixture `browser`)
from tests.support.identity import PASSWORD, login, make_user
from tests.support.topics import tenant_topic

pytestmark = pytest.mark.integration  # starts an API process of its own and a browser

RUN = uuid.uuid4().hex[:6]
TENANT, OTHER_TENANT = f"tcb{RUN}", f"tcbo{RUN}"
DEV, VIEWER, OTHER = f"tc-dev-{RUN}", f"tc-viewer-{RUN}", f"tc-other-{RUN}"
SYSTEM = f"tcsys{RUN}"
PER_PARTITION = {0: 25, 1: 2}


@pytest.fixture(scope="module")
def console(stack_settings):
    proc, base = start_api(stack_settings, port=PORT_BASE + 420)
    key = (stack_settings.state_dir / "api_key").read_text().strip()
    try:
        make_user(base, key, DEV, ["developer"], tenant=TENANT)
        make_user(base, key, VIEWER, ["viewer"], tenant=TENANT)
        make_user(base, key, OTHER, ["admin"], tenant=OTHER_TENANT)
        dev = login(base, DEV)
        topic = tenant_topic(stack_settings, base, key, dev, TENANT, SYSTEM, f"tc-files-{RUN}", PER_PARTITION)
        extra = [_empty_topic(stack_settings, base, dev, f"tcpg{RUN}{n}", f"tc-more{n}-{RUN}") for n in (1, 2)]
        yield {"base": base, "topic": topic, "extra": extra}
    finally:
        stop_api(proc)


def _empty_topic(settings, base: str, dev: dict, system: str, connector: str) -> str:
    """One more topic of the tenant, cheaply: a paused files connector naming it, the topic created."""
    config = {"connector.class": "files", "system": system, "table": "people", "settle_seconds": 0}
    config |= {"store": {"root": str(settings.resolved_data_root / TENANT), "pattern": "in/*.csv"}}
    config |= {"columns": [{"name": "id", "type": "int", "key": True}]}
    r = httpx.post(f"{base}/connectors", headers=dev, json={"name": connector, "config": config}, timeout=30)
    assert r.status_code == 201, r.text
    httpx.put(f"{base}/connectors/{connector}/pause", headers=dev, timeout=30)
    topic = topic_name(settings.topic_prefix, system, None, "people")
    ensure_topics(settings.kafka_bootstrap, [topic], partitions=1)
    return topic


@pytest.fixture(scope="module")
def shots(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("topics-shots")


def _signed_in(browser, console, user: str):
    page, problems = new_page(browser, console)
    sign_in(page, user, PASSWORD)
    page.wait_for_url("**/console/")
    return page, problems


def _values(page) -> dict[int, str]:
    rows = page.locator("#messages-table tbody tr")
    return {int(r.get_attribute("data-offset")): r.locator("pre.value").inner_text() for r in rows.all()}


def test_topic_list_detail_diff_and_message_pages(browser, console, shots):
    page, problems = _signed_in(browser, console, DEV)
    topic = console["topic"]
    page.get_by_role("link", name="主题", exact=True).click()
    page.wait_for_url("**/console/topics")
    page.get_by_label("按名称筛选").fill(SYSTEM)
    page.get_by_role("button", name="筛选").click()
    row = page.locator(f'#topics-table tr[data-topic="{topic}"]')
    row.wait_for()
    assert page.locator("#topics-table tbody tr").count() == 1
    assert row.locator(".messages-count").inner_text() == str(sum(PER_PARTITION.values()))
    assert row.locator(".ends .badge").all_inner_texts() == ["0: 25", "1: 2"]
    page.screenshot(path=str(shots / "topics.png"), full_page=True)

    row.get_by_role("link", name=topic).click()
    page.wait_for_selector("#partitions-table")
    ends = page.locator("#partitions-table .end").all_inner_texts()
    assert ends == ["25", "2"]
    assert page.locator("#schema-versions .badge").all_inner_texts() == ["v1", "v2"]
    fields = page.locator("#fields-table tbody tr").evaluate_all("rows => rows.map(r => r.dataset.field)")
    assert fields == ["id", "citizen_id", "name", "phone"]
    page.locator("#diff-show").click()  # v1 -> v2 preselected
    added = page.locator('#diff-table tr[data-change="added"]')
    added.wait_for()
    assert added.get_attribute("data-name") == "phone" and "新增" in added.inner_text()

    page.get_by_label("每页条数").select_option("10")
    page.get_by_role("button", name="读取").click()
    page.wait_for_selector("#messages-table")
    values = _values(page)
    assert list(values) == list(range(10))
    assert '"citizen_id": "******************"' in values[0] and '"name": "张三1"' in values[0]
    assert '"phone": "1*********2"' in values[1]  # record 2: sensitive, first and last kept
    assert "按数据目录分级脱敏" in page.locator("#messages-info").inner_text()
    page.screenshot(path=str(shots / "topic-messages.png"), full_page=True)
    page.locator("#messages-next").click()
    page.wait_for_selector('#messages-table tr[data-offset="10"]')
    page.locator("#messages-next").click()
    page.wait_for_selector('#messages-table tr[data-offset="20"]')
    assert list(_values(page)) == [20, 21, 22, 23, 24]
    assert page.locator("#messages-next").count() == 0  # the partition's end was read
    page.locator("#messages-prev").click()
    page.wait_for_selector('#messages-table tr[data-offset="10"]')
    assert "/console/topics/" in page.url  # htmx swapped the fragment; no page load

    page.goto(f"/console/topics/{topic}?lang=en")
    page.wait_for_selector("#partitions-table")
    assert page.locator("#messages-h").inner_text() == "Message browser"
    page.screenshot(path=str(shots / "topic-en.png"), full_page=True)
    page.goto("/console/topics?lang=zh-CN")
    assert not problems, problems
    page.context.close()


def test_a_viewer_sees_masked_values_and_another_tenant_nothing(browser, console, shots):
    topic = console["topic"]
    page, problems = _signed_in(browser, console, VIEWER)
    page.goto(f"/console/topics/{topic}")
    page.locator("#browse-partition").select_option("1")
    page.get_by_role("button", name="读取").click()
    page.wait_for_selector("#messages-table")
    values = _values(page)
    assert len(values) == PER_PARTITION[1]
    assert all("张三" not in v and "3701" not in v and '"****"' in v for v in values.values())
    assert page.locator("#masked-all").count() == 1
    page.screenshot(path=str(shots / "topic-viewer.png"), full_page=True)
    assert not problems, problems
    page.context.close()

    page, problems = _signed_in(browser, console, OTHER)
    page.goto("/console/topics")
    assert page.locator(f'#topics-table tr[data-topic="{topic}"]').count() == 0
    response = page.goto(f"/console/topics/{topic}")
    assert response.status == 404
    assert "没有主题" in page.locator("#topic-error").inner_text()
    page.screenshot(path=str(shots / "topic-other-tenant.png"), full_page=True)
    page.context.close()


def test_the_topic_list_pages_by_name(browser, console, shots):
    """Three topics of the tenant a page at a time (a size by URL; the list offers 20/50/100)."""
    names = sorted([console["topic"], *console["extra"]])
    page, problems = _signed_in(browser, console, DEV)
    page.goto(f"/console/topics?q={RUN}&size=1")
    seen = []
    for n in range(3):
        row = page.locator("#topics-table tbody tr")
        assert row.count() == 1
        seen.append(row.get_attribute("data-topic"))
        assert page.locator("#topics-count").inner_text().startswith(f"第 {n + 1}–{n + 1} 个，共 3 个主题")
        if n < 2:
            page.locator("#topics-next").click()
            page.wait_for_url(f"**offset={n + 1}**")
    assert seen == names and page.locator("#topics-next").count() == 0
    page.screenshot(path=str(shots / "topics-paged.png"), full_page=True)
    page.locator("#topics-prev").click()
    page.wait_for_url("**offset=1**")
    assert page.locator("#topics-table tbody tr").get_attribute("data-topic") == names[1]
    page.get_by_label("每页主题数").select_option("20")
    page.get_by_role("button", name="筛选").click()
    page.wait_for_url("**size=20**")
    assert page.locator("#topics-table tbody tr").count() == 3  # back to the first page of 20
    assert page.locator("#topics-prev").count() == 0 and page.locator("#topics-next").count() == 0
    assert not problems, problems
    page.context.close()
