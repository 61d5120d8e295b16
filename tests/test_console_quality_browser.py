"""The quality pages (数据质量, issue 16) in a real browser (Chromium, as
tests/test_console_browser.py), on an API process of their own: a pipeline's quarantine topic holds
records in the runner's format (written here with the runner's schema: the runner itself is driven
in tests/test_quality_tickets.py). A steward browses the quarantine by pipeline and rule, sees each
record with its violation and original row, opens a ticket from a chosen record (no owner in the
catalogue: unassigned and says so), comments, assigns, starts and resolves it, and finds it in the
board's "resolved" column; the close button is not offered before verification. A viewer (no
quality:manage, no data:view) sees the ticket without the comment form or any button, its samples masked. English with
?lang=en. Screenshots: <pytest tmp>/quality-shots/."""

from __future__ import annotations

import json
import time
import uuid
from pathlib import Path

import httpx
import pytest
from confluent_kafka import Producer

from connectors.pipeline import PipelineSpec
from schemas.envelope import QUARANTINE_SCHEMA
from schemas.naming import quarantine_topic, value_subject
from schemas.serde import WireCodec
from tests.api_process import start_api, stop_api
from tests.conftest import PORT_BASE
from tests.support.console import chromium_browser, new_page, sign_in  # noqa: F401  (fixture `browser`)

pytestmark = pytest.mark.integration  # starts an API process of its own and a browser

PASSWORD = "Quality-Console-Pass-42"
RUN = uuid.uuid4().hex[:6]
STEWARD, VIEWER = f"qc-steward-{RUN}", f"qc-viewer-{RUN}"
TENANT = f"qc-{RUN}"
PIPELINE = f"qc-pipe-{RUN}"
NAMES = ["张三", "李四", "王五"]


def _records(settings, topic: str) -> None:
    """Three records as a runner quarantines them: `code` missing (rule code_required)."""
    codec = WireCodec(settings.schema_registry_url)
    qtopic = quarantine_topic(topic)
    schema_id = codec.register(value_subject(qtopic), QUARANTINE_SCHEMA)
    producer = Producer({"bootstrap.servers": settings.kafka_bootstrap})
    for i, name in enumerate(NAMES):
        event = {"op": "c", "before": None, "after": {"id": i + 1, "code": None, "name": name}}
        violation = {
            "rule_id": "code_required",
            "field": "code",
            "message": "code is required",
            "dimension": "completeness",
        }
        record = {
            "reason": "rules",
            "stage": "runner",
            "violations": [violation],
            "original_topic": topic,
            "original_partition": 0,
            "original_offset": i,
            "original_key": str(i + 1).encode(),
            "original_value": b"",
            "original_json": json.dumps(event, ensure_ascii=False),
            "ts_ms": int(time.time() * 1000),
        }
        producer.produce(qtopic, key=str(i + 1).encode(), value=codec.encode(schema_id, record))
    assert producer.flush(30) == 0


@pytest.fixture(scope="module")
def console(stack_settings, pg_url):
    proc, base = start_api(stack_settings, port=PORT_BASE + 188)
    op = {"X-API-Key": (stack_settings.state_dir / "api_key").read_text().strip()}
    role = {
        "name": f"qc-role-{RUN}",
        "tenant": TENANT,
        "permissions": ["quality:manage", "metadata:view", "pipeline:view", "data:view"],
    }
    assert httpx.post(base + "/roles", headers=op, json=role, timeout=60).status_code == 201
    for name, roles in ((STEWARD, [role["name"]]), (VIEWER, ["viewer"])):
        body = {"username": name, "password": PASSWORD, "roles": roles, "tenant": TENANT}
        r = httpx.post(base + "/users", headers=op, json=body, timeout=60)
        assert r.status_code == 201, r.text
    source = {
        "url": pg_url,
        "system": f"qc{RUN}",
        "db_schema": "public",
        "table": f"qc_people_{RUN}",
        "timestamp_column": "updated_at",
    }
    document = {
        "name": PIPELINE,
        "tenant": TENANT,
        "source": {"kind": "relational.timestamp", "config": source},
        "rules": [{"id": "code_required", "kind": "required", "fields": ["code"]}],
        "sink": {"kind": "clickhouse", "config": {"table": f"qc_{RUN}"}},
    }
    r = httpx.post(base + "/pipelines", headers=op, json=document, timeout=60)
    assert r.status_code == 201, r.text
    _records(stack_settings, PipelineSpec.model_validate(document).source_topic(stack_settings))
    yield {"base": base, "op": op}
    stop_api(proc)


@pytest.fixture(scope="module")
def shots(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("quality-shots")


def test_steward_opens_and_works_a_ticket_from_the_quarantine(browser, console, shots):
    page, problems = new_page(browser, console)
    sign_in(page, STEWARD, PASSWORD)
    page.get_by_role("link", name="数据质量").click()
    page.get_by_role("link", name="隔离记录").click()
    page.get_by_label("流水线").select_option(PIPELINE)
    page.get_by_label("规则").fill("code_required")
    page.locator("#quarantine-apply").click()
    page.wait_for_selector("#quarantine-table")
    assert "共 3 条隔离记录" in page.locator("#quarantine-count").inner_text()
    rows = page.locator("#quarantine-table tbody tr")
    assert rows.count() == 3
    assert "code_required" in rows.first.inner_text() and "王五" in rows.first.inner_text()  # newest first
    page.screenshot(path=str(shots / "quarantine.png"), full_page=True)

    rows.first.locator("input[type=checkbox]").check()
    page.locator("#open-ticket").click()
    page.wait_for_selector("#ticket-facts")
    assert page.locator("#ticket-state").get_attribute("data-state") == "open"
    assert "目录中没有" in page.locator("#ticket-assignee").inner_text()  # no owner: unassigned, says why
    assert "完整性" in page.locator("#ticket-facts").inner_text()
    assert "王五" in page.locator("#ticket-samples").inner_text()
    assert page.locator("[data-action=close]").count() == 0  # not offered while open

    page.get_by_label("评论").fill("请源系统补录 code")
    page.locator("#do-comment").click()
    page.wait_for_selector("#ticket-history li[data-kind=comment]")
    page.get_by_label("处理人").fill(STEWARD)
    page.locator("#do-assign").click()
    page.wait_for_selector("#ticket-state[data-state=assigned]")
    page.locator("#do-start").click()
    page.wait_for_selector("#ticket-state[data-state=in_progress]")
    page.locator("#do-resolve").click()  # no reason: the API's refusal, in Chinese, on the page
    page.wait_for_selector("#ticket-error")
    assert "原因" in page.locator("#ticket-error").inner_text()
    page.get_by_label("解决方式").select_option("fixed_at_source")
    page.get_by_label("原因").fill("源系统已补录")
    page.locator("#do-resolve").click()
    page.wait_for_selector("#ticket-state[data-state=resolved]")
    assert page.locator("#do-close").count() == 0  # closes once verified on new data
    assert "已在源头修正" in page.locator("#ticket-resolution").inner_text()
    history = page.locator("#ticket-history").inner_text()
    assert "请源系统补录 code" in history and "处理中 → 已解决" in history
    ticket_url = page.url
    page.screenshot(path=str(shots / "ticket.png"), full_page=True)

    page.get_by_role("link", name="问题工单").first.click()
    page.wait_for_selector("#tickets-board")
    resolved = page.locator("section[data-state=resolved]")
    assert resolved.locator("article").count() == 1 and PIPELINE in resolved.inner_text()
    page.screenshot(path=str(shots / "board.png"), full_page=True)
    page.goto("/console/quality/tickets?lang=en")
    assert page.locator("h1").inner_text() == "Quality tickets"
    assert problems == [], problems

    viewer, viewer_problems = new_page(browser, console)
    sign_in(viewer, VIEWER, PASSWORD)
    viewer.goto(ticket_url.replace(console["base"], ""))
    viewer.wait_for_selector("#ticket-facts")
    assert viewer.locator("#ticket-actions").count() == 0 and viewer.locator("#comment-form").count() == 0
    assert "****" in viewer.locator("#ticket-samples").inner_text() and "王五" not in viewer.content()
    assert viewer_problems == [], viewer_problems
