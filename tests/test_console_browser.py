"""The web console in a real browser: Playwright driving Debian's Chromium (installed by
`huiliu servers prepare`; Playwright never downloads its own) against the API as a process.

An admin signs in (after a wrong password), sees the overview's charts fed by polling, creates a
connector from the plugin's form (a field error first), pauses, resumes and deletes it, opens a
pipeline's graph, deploys and undeploys it, watches a job's progress rise without a reload, and
switches to English; a viewer sees no edit buttons and the server refuses the deploy anyway;
CSRF, sign-out and an expired session are checked. Screenshots: <pytest tmp>/console-shots/.
"""

from __future__ import annotations

import json
import socket
import threading
import uuid
from pathlib import Path

import httpx
import pytest
from sqlalchemy import create_engine, text

from tests.api_process import start_api, stop_api
from tests.conftest import PORT_BASE
from tests.support import console as support
from tests.support.console import chromium_browser, new_page  # noqa: F401  (fixture `browser`)

pytestmark = pytest.mark.integration  # starts an API process of its own and a browser

PASSWORD = "Console-Test-Pass-42"
RUN = uuid.uuid4().hex[:6]
ADMIN, VIEWER, OTHER = f"con-admin-{RUN}", f"con-viewer-{RUN}", f"con-other-{RUN}"
TENANT, OTHER_TENANT = f"con-{RUN}", f"con-b-{RUN}"
PIPELINE = f"con-pipe-{RUN}"
TABLE = f"con_src_{RUN}"
# Creating a connector with host and port checks the address answers (connectors/validation.py), so
# the module listens there itself; the connector would listen only once a worker ran it (none does).
SOCKET_PORT = PORT_BASE + 171


def _answer(listener: socket.socket) -> None:
    """Accept and close every connection (the connector check connects once per create)."""
    while True:
        try:
            conn, _ = listener.accept()
        except OSError:  # closed at the end of the module
            return
        conn.close()


@pytest.fixture(scope="module")
def console(stack_settings, pg_url):
    settings = stack_settings.model_copy(update={"probe_allow": [f"127.0.0.1:{SOCKET_PORT}"]})
    proc, base = start_api(settings, port=PORT_BASE + 160)
    key = (settings.state_dir / "api_key").read_text().strip()
    op = {"X-API-Key": key}
    for name, role, tenant in ((ADMIN, "admin", TENANT), (VIEWER, "viewer", TENANT), (OTHER, "admin", OTHER_TENANT)):
        r = httpx.post(
            base + "/users",
            headers=op,
            json={"username": name, "password": PASSWORD, "roles": [role], "tenant": tenant},
        )
        assert r.status_code == 201, r.text
    engine = create_engine(pg_url)
    with engine.begin() as conn:
        conn.execute(text(f"CREATE TABLE {TABLE} (id integer PRIMARY KEY, name text, updated_at timestamp NOT NULL)"))
    engine.dispose()
    document = {
        "name": PIPELINE,
        "tenant": TENANT,
        "source": {
            "kind": "relational.timestamp",
            "config": {
                "url": pg_url,
                "system": f"con{RUN}",
                "db_schema": "public",
                "table": TABLE,
                "timestamp_column": "updated_at",
            },
        },
        "transforms": [{"kind": "trim", "fields": ["name"]}],
        "rules": [{"id": "name_required", "kind": "required", "fields": ["name"], "severity": "reject"}],
        "sink": {"kind": "clickhouse", "config": {"table": f"con_{RUN}"}},
    }
    r = httpx.post(base + "/pipelines", headers=op, json=document, timeout=60)
    assert r.status_code == 201, r.text
    listener = socket.create_server(("127.0.0.1", SOCKET_PORT))
    threading.Thread(target=_answer, args=(listener,), daemon=True).start()
    yield {"base": base, "op": op, "settings": settings}
    listener.close()
    httpx.post(f"{base}/pipelines/{PIPELINE}/undeploy", headers=op, timeout=60)
    stop_api(proc)


@pytest.fixture(scope="module")
def shots(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("console-shots")


def sign_in(page, user: str, password: str = PASSWORD) -> None:
    support.sign_in(page, user, password)


@pytest.fixture(scope="module")
def admin(browser, console):
    page, problems = new_page(browser, console)
    page.goto("/console/")
    assert page.url.endswith("/console/login?next=/console/")  # not signed in: the sign-in page
    sign_in(page, ADMIN, "wrong-password-123")
    assert page.locator("#login-error").inner_text() == "用户名或密码错误。"
    sign_in(page, ADMIN)
    page.wait_for_url("**/console/")
    problems.clear()  # the browser logs the refused sign-in's 401; from here on nothing may fail
    yield page, problems
    page.context.close()


def test_overview_shows_health_and_live_charts(admin, console, shots):
    from deploy.control import StageCounters

    page, problems = admin
    counters = StageCounters(console["settings"].resolved_control_db_url, PIPELINE)
    assert page.locator("h1").inner_text() == "运行概览"
    assert page.locator("html").get_attribute("lang") == "zh-CN"
    page.wait_for_selector("#health-table tbody tr")  # loaded after the page (htmx)
    assert page.locator("#health-table tbody tr").count() >= 3  # broker, registry, control DB, ...
    for chart in ("#chart-events", "#chart-lag"):
        page.wait_for_selector(f"{chart} canvas")

    # two polls (5 s apart) reached the charts: the JSON endpoint answers under the session cookie
    # (polled from here: the page's CSP forbids the eval Playwright's wait_for_function would use)
    def samples(chart: str) -> int:
        return int(page.locator(chart).get_attribute("data-samples") or 0)

    for _ in range(90):  # the pipeline's source reads on while the page polls every 5 s
        counters.add("source", {"read": 40})
        counters.add("sink", {"written": 30})
        if samples("#chart-events") >= 4 and samples("#chart-lag") >= 4:
            break
        page.wait_for_timeout(500)
    assert samples("#chart-events") >= 4 and samples("#chart-lag") >= 4
    series = page.evaluate(
        "echarts.getInstanceByDom(document.getElementById('chart-events')).getOption().series"
        ".map(s => [s.name, s.data.length > 1 ? Math.max(...s.data.map(p => p[1])) : 0])"
    )
    rates = dict(series)  # two rates or more per line, each above 0
    assert rates[f"{PIPELINE}/source/read"] > 0 and rates[f"{PIPELINE}/sink/written"] > 0, rates
    cookies = {c["name"]: c for c in page.context.cookies()}
    session = cookies["huiliu_session"]
    assert session["httpOnly"] and session["sameSite"] == "Strict" and session["path"] == "/console"
    page.screenshot(path=str(shots / "overview.png"), full_page=True)
    assert not problems, problems  # no script errors, nothing the CSP blocked


def test_create_connector_from_the_form_then_pause_resume_delete(admin, console, shots):
    page, problems = admin
    name = f"con-sock-{RUN}"
    page.get_by_role("link", name="连接器").click()
    page.get_by_role("link", name="新建连接器").click()
    page.get_by_label("插件").select_option("streams.socket")
    page.get_by_role("button", name="填写配置").click()
    page.get_by_label("名称").fill(name)
    page.get_by_label("system").fill("sensors")
    page.get_by_label("host").fill("127.0.0.1")
    page.get_by_label("port").fill("not-a-port")
    page.get_by_role("button", name="创建").click()
    error = page.locator('.field-error[data-field="port"]')
    assert "integer" in error.inner_text()
    assert page.get_by_label("port").get_attribute("aria-invalid") == "true"
    assert page.get_by_label("名称").input_value() == name  # what was typed stays
    page.screenshot(path=str(shots / "connector-form-error.png"), full_page=True)
    assert problems == ["Failed to load resource: the server responded with a status of 422 (Unprocessable Entity)"]
    problems.clear()

    page.get_by_label("port").fill(str(SOCKET_PORT))
    page.get_by_role("button", name="创建").click()
    page.wait_for_load_state()
    errors = page.locator(".field-error, .error").all_inner_texts()
    assert page.url.endswith("/console/connectors"), errors
    row = page.locator(f'tr[data-connector="{name}"]')
    assert row.count() == 1

    row.get_by_role("button", name=f"暂停 {name}").click()
    page.wait_for_selector(f'tr[data-connector="{name}"] [data-state="PAUSED"]')
    assert "已暂停" in page.locator(f'tr[data-connector="{name}"]').inner_text()
    page.screenshot(path=str(shots / "connectors-paused.png"), full_page=True)
    page.locator(f'tr[data-connector="{name}"]').get_by_role("button", name=f"恢复 {name}").click()
    page.wait_for_selector(f'tr[data-connector="{name}"] [data-state]:not([data-state="PAUSED"])')

    status = httpx.get(f"{console['base']}/connectors/{name}/status", headers=console["op"]).json()
    assert status["connector"]["state"] != "PAUSED"
    page.locator(f'tr[data-connector="{name}"]').get_by_role("button", name=f"重启 {name}").click()
    page.wait_for_load_state("networkidle")
    assert page.locator(f'tr[data-connector="{name}"] .error').count() == 0
    audit = httpx.get(f"{console['base']}/audit", headers=console["op"], params={"actor": ADMIN}).json()
    done = {(e["path"], e["status"]) for e in audit}
    assert any(path == f"/connectors/{name}/restart" and status < 300 for path, status in done), done
    assert (f"/connectors/{name}/pause", 202) in done  # each button is the API's own audited call

    page.once("dialog", lambda d: d.accept())
    page.locator(f'tr[data-connector="{name}"]').get_by_role("button", name=f"删除 {name}").click()
    page.wait_for_selector(f'tr[data-connector="{name}"]', state="detached")
    assert httpx.get(f"{console['base']}/connectors/{name}", headers=console["op"]).status_code == 404
    assert not problems, problems


def test_pipeline_graph_with_counts_and_deploy_undeploy(admin, console, shots):
    from deploy.control import StageCounters

    page, problems = admin
    # what a running pipeline's stages report (stands in for a worker here)
    counters = StageCounters(console["settings"].resolved_control_db_url, PIPELINE)
    counters.add("source", {"read": 12})
    counters.add("runner", {"read": 12, "valid": 9, "quarantined": 3, "quarantined.name_required": 3})
    counters.add("sink", {"written": 9})
    page.get_by_role("link", name="管道").first.click()
    page.get_by_role("link", name=PIPELINE).click()
    page.wait_for_selector("#pipeline-graph canvas")
    graph = httpx.get(f"{console['base']}/pipelines/{PIPELINE}/graph", headers=console["op"]).json()
    drawn = page.locator("#pipeline-graph")
    assert int(drawn.get_attribute("data-nodes")) == len(graph["nodes"]) == 7
    assert int(drawn.get_attribute("data-edges")) == len(graph["edges"])
    assert page.locator("#deployment-state").get_attribute("data-deployed") == "false"
    page.wait_for_selector("#pipeline-graph[data-counts-seen]")
    stages = httpx.get(f"{console['base']}/pipelines/{PIPELINE}/stats", headers=console["op"]).json()["stages"]
    shown = json.loads(drawn.get_attribute("data-counts-seen"))
    assert shown["source"] == stages["source"]["read"] and shown["sink"] == stages["sink"]["written"]
    assert (shown["topic:raw"], shown["topic:clean"], shown["topic:quarantine"]) == (12, 9, 3)
    assert shown["rule:name_required"] == 3
    page.screenshot(path=str(shots / "pipeline-graph.png"), full_page=True)

    page.get_by_role("button", name="部署", exact=True).click()
    page.wait_for_selector('#deployment-state[data-deployed="true"]', timeout=60_000)
    page.once("dialog", lambda d: d.accept())
    page.get_by_role("button", name="取消部署").click()
    page.wait_for_selector('#deployment-state[data-deployed="false"]', timeout=60_000)
    assert not problems, problems


def test_job_progress_rises_without_a_reload(admin, console):
    page, problems = admin
    token = httpx.post(f"{console['base']}/auth/token", data={"username": ADMIN, "password": PASSWORD})
    bearer = {"Authorization": f"Bearer {token.json()['access_token']}"}
    job = httpx.post(
        f"{console['base']}/jobs", headers=bearer, json={"action": "sleep", "params": {"seconds": 8, "steps": 8}}
    )
    assert job.status_code == 202, job.text
    job_id = job.json()["id"]
    page.goto("/console/jobs")
    page.evaluate("window.__sameDocument = true")
    bar = page.locator(f'tr[data-job="{job_id}"] progress')
    seen = set()
    for _ in range(40):
        value = bar.get_attribute("value")
        seen.add(float(value))
        if float(value) >= 100:
            break
        page.wait_for_timeout(500)
    assert page.evaluate("window.__sameDocument === true")  # polled into the page, never reloaded
    assert max(seen) == 100 and len(seen) >= 3, seen  # intermediate values on the way
    page.wait_for_selector(f'tr[data-job="{job_id}"] .state-succeeded')
    assert not problems, problems


def test_a_running_job_is_cancelled_from_the_message_centre(admin, console):
    page, problems = admin
    token = httpx.post(f"{console['base']}/auth/token", data={"username": ADMIN, "password": PASSWORD})
    bearer = {"Authorization": f"Bearer {token.json()['access_token']}"}
    job = httpx.post(
        f"{console['base']}/jobs", headers=bearer, json={"action": "sleep", "params": {"seconds": 60, "steps": 60}}
    )
    job_id = job.json()["id"]
    page.goto("/console/jobs")
    page.wait_for_selector(f'tr[data-job="{job_id}"] .state-running')
    page.locator(f'tr[data-job="{job_id}"]').get_by_role("button", name="取消").click()
    page.wait_for_selector(f'tr[data-job="{job_id}"] .state-cancelled', timeout=30_000)
    assert httpx.get(f"{console['base']}/jobs/{job_id}", headers=bearer).json()["state"] == "cancelled"
    assert not problems, problems


def test_schedule_runs_now_and_its_history_fills_in(admin, console):
    page, problems = admin
    token = httpx.post(f"{console['base']}/auth/token", data={"username": ADMIN, "password": PASSWORD})
    bearer = {"Authorization": f"Bearer {token.json()['access_token']}"}
    name = f"con-sched-{RUN}"
    made = httpx.post(
        f"{console['base']}/schedules",
        headers=bearer,
        json={"name": name, "action": "sleep", "params": {"seconds": 1, "steps": 2}},
    )
    assert made.status_code == 201, made.text
    page.get_by_role("link", name="调度").click()
    row = page.locator(f'tr[data-schedule="{name}"]')
    row.get_by_role("button", name=f"立即运行 {name}").click()
    page.wait_for_selector('#runs-table [data-status="succeeded"]', timeout=60_000)
    runs = httpx.get(f"{console['base']}/schedules/{made.json()['id']}/runs", headers=bearer).json()
    assert [r["trigger"] for r in runs] == ["manual"] and runs[0]["operator"] == ADMIN
    assert "手动" in page.locator("#runs-table").inner_text()
    assert not problems, problems


def test_viewer_sees_no_edit_buttons_and_the_server_refuses(browser, console, shots):
    page, _ = new_page(browser, console)
    sign_in(page, VIEWER)
    page.wait_for_url("**/console/")
    page.goto(f"/console/pipelines/{PIPELINE}")
    page.wait_for_selector("#pipeline-graph canvas")
    assert page.locator("#deploy").count() == 0 and page.locator("#undeploy").count() == 0
    page.goto("/console/connectors")
    assert "connector:manage" in page.locator(".error").inner_text()  # the API's refusal, shown
    assert page.locator("#new-connector").count() == 0
    page.screenshot(path=str(shots / "viewer-connectors.png"), full_page=True)
    # The button is hidden, and the action is refused anyway: post it with the viewer's own session.
    page.goto(f"/console/pipelines/{PIPELINE}")
    csrf = json.loads(page.locator("body").get_attribute("hx-headers"))["X-CSRF-Token"]
    answer = page.request.post(f"/console/pipelines/{PIPELINE}/deploy", headers={"X-CSRF-Token": csrf})
    assert "pipeline:deploy" in answer.text()
    audit = httpx.get(
        f"{console['base']}/audit", headers=console["op"], params={"actor": VIEWER, "outcome": "denied"}
    ).json()
    assert any(e["path"] == f"/pipelines/{PIPELINE}/deploy" and e["status"] == 403 for e in audit), audit
    deployment = httpx.get(f"{console['base']}/pipelines/{PIPELINE}/deployment", headers=console["op"]).json()
    assert deployment["deployed"] is False
    page.context.close()


def test_another_tenants_admin_finds_nothing(browser, console):
    page, _ = new_page(browser, console)
    sign_in(page, OTHER)
    page.wait_for_url("**/console/")
    page.goto("/console/pipelines")
    assert page.get_by_role("link", name=PIPELINE).count() == 0
    answer = page.goto(f"/console/pipelines/{PIPELINE}")
    assert answer.status == 404 and page.locator("#pipeline-graph").count() == 0  # as if it did not exist
    csrf = json.loads(page.locator("body").get_attribute("hx-headers"))["X-CSRF-Token"]
    refused = page.request.post(f"/console/pipelines/{PIPELINE}/deploy", headers={"X-CSRF-Token": csrf})
    assert f'id="deploy-error">no pipeline &#39;{PIPELINE}&#39;' in refused.text()  # the API's 404, shown
    deployment = httpx.get(f"{console['base']}/pipelines/{PIPELINE}/deployment", headers=console["op"]).json()
    assert deployment["deployed"] is False
    page.context.close()


def test_keyboard_reaches_the_skip_link_and_the_menu(browser, console):
    page, _ = new_page(browser, console)
    sign_in(page, VIEWER)
    page.wait_for_url("**/console/")
    page.keyboard.press("Tab")
    assert page.evaluate("document.activeElement.className") == "skip"
    page.keyboard.press("Tab")
    assert page.evaluate("document.activeElement.textContent") == "概览"
    page.context.close()


def test_csrf_sign_out_and_expired_session(browser, console):
    page, _ = new_page(browser, console)
    sign_in(page, ADMIN)
    page.wait_for_url("**/console/")
    refused = page.request.post(f"/console/pipelines/{PIPELINE}/deploy")  # no CSRF token
    assert refused.status == 403
    forged = page.request.post(f"/console/pipelines/{PIPELINE}/deploy", headers={"X-CSRF-Token": "0" * 64})
    assert forged.status == 403
    # a live page whose session ends mid-way: its next poll (htmx) takes the person to the sign-in page
    page.goto("/console/jobs")
    page.context.clear_cookies()
    page.wait_for_url("**/console/login?next=/console/jobs", timeout=15_000)
    page.get_by_label("用户名").fill(ADMIN)  # the form on that page carries where to go next
    page.get_by_label("密码").fill(PASSWORD)
    page.get_by_role("button", name="登录").click()
    page.wait_for_url("**/console/jobs")  # back on the page, signed in again
    page.goto("/console/")
    page.get_by_role("button", name="退出登录").click()
    page.wait_for_url("**/console/login")
    page.goto("/console/connectors")
    assert "/console/login?next=/console/connectors" in page.url
    # a token that no longer verifies (expired, or the key changed) sends the person back to sign in
    page.context.add_cookies(
        [{"name": "huiliu_session", "value": "eyJhbGciOiJIUzI1NiJ9.e30.x", "url": console["base"] + "/console/"}]
    )
    page.goto("/console/pipelines")
    assert "expired=1" in page.url
    assert page.locator(".notice").inner_text() == "会话已过期，请重新登录。"
    page.context.close()


def test_language_switches_to_english_and_stays(admin, shots):
    page, problems = admin
    page.goto("/console/")
    page.get_by_role("link", name="English").click()
    page.wait_for_url("**lang=en")
    assert page.locator("h1").inner_text() == "Overview"
    assert page.locator("html").get_attribute("lang") == "en"
    page.get_by_role("link", name="Pipelines").click()
    assert page.locator("h1").inner_text() == "Pipelines"  # the cookie keeps the choice
    assert "Asia/Shanghai" in page.locator("footer").inner_text()
    page.screenshot(path=str(shots / "pipelines-en.png"), full_page=True)
    page.get_by_role("link", name="中文").click()
    assert page.locator("h1").inner_text() == "管道"
    assert not problems, problems


def test_name_filter_box_narrows_the_lists(admin, console):
    page, problems = admin
    page.goto("/console/pipelines")
    page.get_by_label("按名称筛选").fill(PIPELINE[2:])
    page.locator("#pipelines-filter").click()
    page.wait_for_url("**/console/pipelines?q=*")
    assert page.get_by_role("link", name=PIPELINE).count() == 1
    assert page.locator("#pipelines-count").is_visible() and page.locator("#pipelines-next").count() == 0
    page.get_by_label("按名称筛选").fill("no-such-pipeline-at-all")
    page.locator("#pipelines-filter").click()
    page.wait_for_url("**q=no-such-pipeline-at-all*")
    assert page.locator("#pipelines-none").is_visible() and page.locator("#pipelines-table").count() == 0
    page.goto("/console/connectors")
    page.get_by_label("按名称筛选").fill("no-such-connector-at-all")
    page.locator("#connectors-filter").click()
    page.wait_for_url("**/console/connectors?q=no-such-connector-at-all*")
    assert page.locator("#connectors-none").is_visible() and page.locator("#connectors-prev").count() == 0
    assert not problems, problems


def _drag_node(page, node: str, dx: int) -> None:
    """Drag a node of the editor's graph sideways with the mouse (cytoscape draws on a canvas)."""
    page.locator("#editor-graph").scroll_into_view_if_needed()
    at = json.loads(page.locator("#pipeline-editor").get_attribute("data-positions"))[node]
    box = page.locator("#editor-graph").bounding_box()
    x, y = box["x"] + at[0], box["y"] + at[1]
    page.mouse.move(x, y)
    page.mouse.down()
    for step in range(1, 11):
        page.mouse.move(x + dx * step / 10, y)
    page.mouse.up()


def test_graph_editor_adds_reorders_saves_and_refuses_a_stale_save(admin, console, shots):
    page, problems = admin
    op, base = console["op"], console["base"]
    page.goto(f"/console/pipelines/{PIPELINE}")
    before = httpx.get(f"{base}/pipelines/{PIPELINE}", headers=op).json()
    page.locator("#edit-link").click()
    page.wait_for_selector('#pipeline-editor[data-ready="true"]')
    assert page.locator("#editor-count").inner_text() == "2"  # trim + name_required

    # a rule from the palette by keyboard (focus, Enter), its form filled in
    page.locator("#palette-rule-not_blank").focus()
    page.keyboard.press("Enter")
    assert page.locator("#node-title").inner_text() == "质量规则: not_blank"
    assert page.locator("#nf-id").input_value() == "not_blank_2"
    page.locator("#nf-fields").fill('["name"]')
    page.get_by_role("button", name="应用设置").click()
    # a transform dropped on the graph with the mouse, then dragged left of trim: the order follows the drawing
    page.drag_and_drop("#palette-transform-cast", "#editor-graph")
    assert page.locator("#node-title").inner_text() == "转换: cast"
    page.locator("#nf-types").fill('{"id": "integer"}')
    page.get_by_role("button", name="应用设置").click()
    assert page.locator("#editor-count").inner_text() == "4"
    _drag_node(page, "transform:1", -300)
    draft = json.loads(page.locator("#editor-document").input_value())
    assert [t["kind"] for t in draft["transforms"]] == ["cast", "trim"], draft["transforms"]
    page.screenshot(path=str(shots / "pipeline-editor.png"), full_page=True)

    page.get_by_label("修改说明").fill("cast ids first; names must not be blank")
    page.get_by_role("button", name="保存为新版本").click()
    page.wait_for_selector("#pipeline-saved")
    saved = httpx.get(f"{base}/pipelines/{PIPELINE}", headers=op).json()
    assert saved["version"] == before["version"] + 1
    assert page.locator("#pipeline-saved").inner_text() == f"已保存为版本 {saved['version']}"
    assert [t["kind"] for t in saved["document"]["transforms"]] == ["cast", "trim"]
    rule = saved["document"]["rules"][-1]
    assert rule["id"] == "not_blank_2" and rule["fields"] == ["name"] and rule["kind"] == "not_blank"

    # versions: the diff of the two drawn, steps matched by id, not position: cast inserted before
    # trim is one added step (trim is not "changed"), the new rule another
    page.locator("#versions-link").click()
    page.wait_for_selector('#versions-graph[data-ready="true"]')
    assert page.locator("#versions-graph").get_attribute("data-marked") == "2"
    rows = page.locator("#diff-table tbody tr").evaluate_all("rs => rs.map(r => [r.dataset.mark, r.dataset.node])")
    assert rows == [["added", "transform:0"], ["added", "rule:not_blank_2"]], rows
    page.screenshot(path=str(shots / "pipeline-versions.png"), full_page=True)

    # a stale save: someone else saves while this draft is open; the page says who, and keeps the draft
    page.goto(f"/console/pipelines/{PIPELINE}/edit")
    page.wait_for_selector('#pipeline-editor[data-ready="true"]')
    page.drag_and_drop("#palette-transform-trim", "#editor-graph")
    page.locator("#nf-fields").fill('["name"]')
    page.get_by_role("button", name="应用设置").click()
    other = {**saved["document"], "description": "changed meanwhile"}
    r = httpx.put(f"{base}/pipelines/{PIPELINE}", headers=op, params={"version": saved["version"]}, json=other)
    assert r.status_code == 200, r.text
    page.get_by_role("button", name="保存为新版本").click()
    page.wait_for_selector("#editor-stale")
    assert (
        "saved by" in page.locator("#editor-errors").inner_text()
        or "保存" in page.locator("#editor-errors").inner_text()
    )
    page.wait_for_selector('#pipeline-editor[data-ready="true"]')
    assert page.locator("#editor-count").inner_text() == "5"  # the person's draft, not the server's
    assert httpx.get(f"{base}/pipelines/{PIPELINE}", headers=op).json()["version"] == saved["version"] + 1
    # the refused save's page comes with the API's 409, which the browser logs as a failed load
    assert [p for p in problems if "409" not in p] == [], problems
    problems.clear()
