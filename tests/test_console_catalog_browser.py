"""The console's catalogue pages (数据目录, issue 15) in a real browser (Chromium, as
tests/test_console_browser.py): a real PostgreSQL table with comments is harvested through the API
(a timestamp source and a lean runner renaming and masking its columns, so there is lineage), then
altered and harvested again (a second version). An admin searches `身份证`, narrows by a facet,
opens the dataset (fields with their comments and keys), edits the owner, classification and tags,
compares the two versions, opens the lineage graph at dataset and field level with the impact
highlighted, and the data map with the asset chart; a viewer sees no edit form and the server
refuses the edit anyway; another tenant finds nothing. Screenshots: <pytest tmp>/catalog-shots/.
"""

from __future__ import annotations

import json
import time
import uuid
from pathlib import Path
from urllib.parse import quote

import httpx
import pytest
from sqlalchemy import create_engine, text

from tests.api_process import start_api, stop_api
from tests.conftest import PORT_BASE
from tests.support.console import chromium_browser, new_page, sign_in  # noqa: F401  (fixture `browser`)

pytestmark = pytest.mark.integration  # starts an API process of its own and a browser

PASSWORD = "Catalog-Console-Pass-42"
RUN = uuid.uuid4().hex[:6]
ADMIN, VIEWER, OTHER = f"cat-admin-{RUN}", f"cat-viewer-{RUN}", f"cat-other-{RUN}"
TENANT, OTHER_TENANT = f"catc-{RUN}", f"catc-b-{RUN}"
SCHEMA = f"catc{RUN}"
SYSTEM = f"hukou{RUN}"
SOURCE, RUNNER, WIDE = f"catc-src-{RUN}", f"catc-run-{RUN}", f"catc-wide-{RUN}"
WIDE_COLUMNS = 57  # more matches than a page of results (50)
RAW = f"huiliu.{SYSTEM}.{SCHEMA}.residents"


def _harvest(base: str, op: dict) -> dict:
    r = httpx.post(f"{base}/metadata/harvest", headers=op, json={"connectors": [SOURCE, RUNNER, WIDE]}, timeout=60)
    assert r.status_code == 202, r.text
    job_id = r.json()["job_id"]
    deadline = time.time() + 120
    while time.time() < deadline:
        job = httpx.get(f"{base}/jobs/{job_id}", headers=op, timeout=30).json()
        if job["state"] not in ("queued", "running"):
            assert job["state"] == "succeeded", job
            return job["result"]
        time.sleep(0.5)
    pytest.fail(f"harvest job {job_id} did not finish")


@pytest.fixture(scope="module")
def catalog(stack_settings, pg_url):
    proc, base = start_api(stack_settings, port=PORT_BASE + 180)
    op = {"X-API-Key": (stack_settings.state_dir / "api_key").read_text().strip()}
    for name, role, tenant in ((ADMIN, "admin", TENANT), (VIEWER, "viewer", TENANT), (OTHER, "admin", OTHER_TENANT)):
        r = httpx.post(
            base + "/users",
            headers=op,
            json={"username": name, "password": PASSWORD, "roles": [role], "tenant": tenant},
        )
        assert r.status_code == 201, r.text
    engine = create_engine(pg_url)
    with engine.begin() as c:
        c.execute(text(f"CREATE SCHEMA {SCHEMA}"))
        c.execute(
            text(
                f"CREATE TABLE {SCHEMA}.residents (id bigint PRIMARY KEY, citizen_id varchar(18) NOT NULL, "
                "name text, phone text, updated_at timestamp NOT NULL)"
            )
        )
        c.execute(text(f"COMMENT ON TABLE {SCHEMA}.residents IS '户籍人口'"))
        c.execute(text(f"COMMENT ON COLUMN {SCHEMA}.residents.citizen_id IS '公民身份证号码'"))
        c.execute(text(f"COMMENT ON COLUMN {SCHEMA}.residents.name IS '姓名'"))
        c.execute(text(f"COMMENT ON COLUMN {SCHEMA}.residents.phone IS '联系电话'"))
        c.execute(text(f"CREATE UNIQUE INDEX ux_res_citizen ON {SCHEMA}.residents (citizen_id)"))
        columns = ", ".join(f"m{i:02d} integer" for i in range(WIDE_COLUMNS))
        c.execute(text(f"CREATE TABLE {SCHEMA}.wide (id integer PRIMARY KEY, {columns})"))
        for i in range(WIDE_COLUMNS):
            c.execute(text(f"COMMENT ON COLUMN {SCHEMA}.wide.m{i:02d} IS '月度指标{i}'"))
    source = {
        "connector.class": "relational.timestamp",
        "url": pg_url,
        "system": SYSTEM,
        "db_schema": SCHEMA,
        "table": "residents",
        "timestamp_column": "updated_at",
    }
    runner = {
        "connector.class": "runner.lean",
        "topics": [RAW],
        "transforms": [
            {"kind": "rename", "mapping": {"name": "full_name"}},
            {"kind": "mask", "fields": {"phone": "phone"}},
        ],
        "rules": [{"id": "name_required", "kind": "required", "fields": ["full_name"], "severity": "reject"}],
    }
    wide = {
        "connector.class": "relational.snapshot",
        "url": pg_url,
        "system": SYSTEM,
        "tables": {"schemas": [SCHEMA], "include": [f"{SCHEMA}.wide"]},
    }
    for name, config in ((SOURCE, source), (RUNNER, runner), (WIDE, wide)):
        body = {"name": name, "config": config, "initial_state": "STOPPED", "tenant": TENANT}
        r = httpx.post(base + "/connectors", headers=op, json=body, timeout=60)
        assert r.status_code == 201, r.text
    first = _harvest(base, op)
    with engine.begin() as c:  # a second version: a column added, a comment changed
        c.execute(text(f"ALTER TABLE {SCHEMA}.residents ADD COLUMN email varchar(100)"))
        c.execute(text(f"COMMENT ON COLUMN {SCHEMA}.residents.name IS '姓名（户籍登记）'"))
    second = _harvest(base, op)
    engine.dispose()
    assert not first["errors"] and not second["errors"], (first, second)
    items = httpx.get(base + "/metadata/datasets", headers=op, params={"limit": 1000}).json()["items"]
    urn = next(d["urn"] for d in items if d["name"] == f"{SCHEMA}.residents")
    yield {"base": base, "op": op, "urn": urn, "harvests": (first, second)}
    for name in (WIDE, RUNNER, SOURCE):
        httpx.delete(f"{base}/connectors/{name}", headers=op, timeout=60)
    stop_api(proc)


@pytest.fixture(scope="module")
def shots(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("catalog-shots")


@pytest.fixture(scope="module")
def admin(browser, catalog):
    page, problems = new_page(browser, catalog)
    sign_in(page, ADMIN, PASSWORD)
    page.wait_for_url("**/console/")
    yield page, problems
    page.context.close()


def _as(catalog, user: str) -> dict:
    """Bearer headers of `user`: what the API shows that person (the operator key sees all tenants)."""
    r = httpx.post(f"{catalog['base']}/auth/token", data={"username": user, "password": PASSWORD}, timeout=60)
    return {"Authorization": f"Bearer {r.json()['access_token']}"}


def _business(catalog) -> dict:
    r = httpx.get(f"{catalog['base']}/metadata/datasets/{quote(catalog['urn'], safe='')}", headers=catalog["op"])
    return r.json()["business"]


def test_search_in_chinese_with_facets_then_the_dataset_page(admin, catalog, shots):
    page, problems = admin
    page.get_by_role("link", name="数据目录").click()
    page.wait_for_url("**/console/catalog")
    assert page.locator("h1").inner_text() == "数据目录"
    page.get_by_label("搜索数据集、字段、标签和说明（中文或英文）").fill("身份证")
    page.get_by_role("button", name="搜索", exact=True).click()
    page.wait_for_selector("#catalog-results")
    hit = page.locator(f'.hit[data-kind="field"][data-field="citizen_id"][data-urn="{catalog["urn"]}"]')
    assert hit.count() == 1, page.locator("#catalog-results").inner_text()
    assert "公民身份证号码" in hit.inner_text()
    # the facets are the API's: kinds, systems and types of the matches, with counts
    kinds = page.locator('[data-facet="kind"] a')
    assert "字段" in kinds.all_inner_texts()
    assert page.locator('[data-facet="type"] a[data-value="VARCHAR(18)"]').count() == 1
    page.screenshot(path=str(shots / "catalog-search.png"), full_page=True)

    page.locator('[data-facet="type"] a[data-value="VARCHAR(18)"]').click()  # narrowed on the type
    page.wait_for_selector('[data-facet="type"] a.on')
    types = {t for t in page.locator(".hit").evaluate_all("els => els.map(e => e.dataset.kind)")}
    assert types == {"field"} and page.locator('.hit[data-field="citizen_id"]').count() >= 1
    page.locator('[data-facet="kind"] a[data-value="field"]').click()  # the API's own kind filter
    page.wait_for_selector('[data-facet="kind"] a.on')
    assert "q=%E8%BA%AB%E4%BB%BD%E8%AF%81" in page.url and "kind=field" in page.url

    page.locator(f'.hit[data-urn="{catalog["urn"]}"][data-field="citizen_id"] a').click()
    page.wait_for_selector("#fields-table")
    assert page.locator("#dataset-name").inner_text().startswith(f"{SCHEMA}.residents")
    assert page.locator("#dataset-comment").inner_text() == "户籍人口"
    assert page.locator('.facts [data-key="primary_key"]').inner_text() == "id"
    assert page.locator('.facts [data-key="indexes"]').inner_text().strip() == "ux_res_citizen (citizen_id) 唯一"
    rows = {
        r[0]: r
        for r in page.locator("#fields-table tbody tr").evaluate_all(
            "rows => rows.map(r => Array.from(r.children).map(c => c.innerText.trim()))"
        )
    }
    assert list(rows) == ["id", "citizen_id", "name", "phone", "updated_at", "email"]
    assert rows["citizen_id"][1:5] == ["VARCHAR(18)", "否", "", "公民身份证号码"]
    assert rows["id"][1:4] == ["BIGINT", "否", "主键"]
    assert rows["name"][2] == "是" and rows["name"][4] == "姓名（户籍登记）"
    assert [v.strip() for v in page.locator("#versions-table tbody tr td:first-child").all_inner_texts()] == ["2", "1"]
    changes = page.locator('#versions-table tr[data-version="2"] .changes .badge').all_inner_texts()
    assert changes == ["新增 1 项", "注释变更 1 项"], changes  # the page's words, from the version's diff
    assert page.locator('#versions-table tr[data-version="1"] .changes').inner_text() == "首次采集"
    page.screenshot(path=str(shots / "dataset.png"), full_page=True)
    assert not problems, problems


def test_many_results_come_in_pages(admin):
    page, problems = admin
    page.goto("/console/catalog")
    page.get_by_label("搜索数据集、字段、标签和说明（中文或英文）").fill("月度指标")
    page.get_by_role("button", name="搜索", exact=True).click()
    page.wait_for_selector("#catalog-results")
    assert page.locator(".hit").count() == 50 and page.locator("#catalog-prev").count() == 0
    first = set(page.locator(".hit").evaluate_all("els => els.map(e => e.dataset.field)"))
    page.locator("#catalog-next").click()
    page.wait_for_selector("#catalog-prev")
    rest = set(page.locator(".hit").evaluate_all("els => els.map(e => e.dataset.field)"))
    assert len(rest) == WIDE_COLUMNS - 50 and not first & rest and page.locator("#catalog-next").count() == 0
    assert first | rest == {f"m{i:02d}" for i in range(WIDE_COLUMNS)}
    assert "从第 51 条起" in page.locator("#results-h").inner_text()
    assert not problems, problems


def test_two_versions_are_compared(admin, catalog, shots):
    page, problems = admin
    page.goto(f"/console/catalog/dataset?urn={quote(catalog['urn'], safe='')}")
    assert page.locator("#diff-from").input_value() == "1" and page.locator("#diff-to").input_value() == "2"
    page.evaluate("window.__sameDocument = true")
    page.get_by_role("button", name="比较").click()
    page.wait_for_selector("#diff-table")
    assert page.evaluate("window.__sameDocument === true")  # swapped in by htmx, no reload
    assert page.locator("#diff-h").inner_text() == "版本 1 → 2 的差异"
    added = page.locator('#diff-table tr[data-change="added"]')
    assert added.count() == 1 and added.get_attribute("data-name") == "email" and "VARCHAR(100)" in added.inner_text()
    comment = page.locator('#diff-table tr[data-change="comment_changed"][data-name="name"]')
    assert (
        "姓名" in comment.inner_text()
        and "姓名（户籍登记）" in comment.inner_text()
        and "注释变更" in comment.inner_text()
    )
    page.screenshot(path=str(shots / "dataset-diff.png"), full_page=True)
    assert not problems, problems


def test_admin_edits_owner_classification_and_tags(admin, catalog, shots):
    page, problems = admin
    page.goto(f"/console/catalog/dataset?urn={quote(catalog['urn'], safe='')}")
    page.get_by_text("编辑业务元数据").click()
    page.get_by_label("负责人").fill("民政局户籍科")
    page.get_by_label("数据管家").fill("li.si")
    page.get_by_label("分级", exact=True).select_option("sensitive")
    page.get_by_label("标签").fill("人口，户籍")
    page.get_by_label("说明", exact=True).fill("常住人口登记")
    page.get_by_role("button", name="保存").click()
    page.wait_for_selector("#business-saved")
    facts = page.locator("#business-facts")
    assert facts.locator('[data-key="owner"]').inner_text() == "民政局户籍科"
    assert facts.locator('[data-key="classification"]').inner_text() == "敏感"
    assert facts.locator('[data-key="tags"] .tag').all_inner_texts() == ["人口", "户籍"]
    business = _business(catalog)
    assert business["owner"] == "民政局户籍科" and business["steward"] == "li.si"
    assert business["classification"] == "sensitive" and business["tags"] == ["人口", "户籍"]
    page.screenshot(path=str(shots / "dataset-edited.png"), full_page=True)

    page.get_by_text("编辑业务元数据").click()  # clearing a value sends null: the steward is gone
    page.get_by_label("数据管家").fill("")
    page.get_by_role("button", name="保存").click()
    page.wait_for_selector('#business-facts [data-key="steward"]:empty')
    assert "steward" not in _business(catalog) and _business(catalog)["owner"] == "民政局户籍科"
    audit = httpx.get(
        f"{catalog['base']}/audit", headers=catalog["op"], params={"actor": ADMIN, "action": "metadata.update"}
    ).json()
    assert sum(1 for e in audit if e["outcome"] == "success") >= 2, audit  # the API's own audited PATCH

    # the fields' classification and description: citizen_id is secret
    page.goto(f"/console/catalog/dataset?urn={quote(catalog['urn'], safe='')}")
    page.get_by_text("编辑字段分级和说明").click()
    page.get_by_label("字段 citizen_id 的分级").select_option("secret")
    page.get_by_label("字段 citizen_id 的说明").fill("18 位公民身份号码")
    page.locator("#save-fields").click()
    page.wait_for_selector("#fields-saved")
    row = page.locator('#fields-table tr[data-field="citizen_id"]')
    assert "涉密" in row.inner_text() and "18 位公民身份号码" in row.inner_text()
    field = next(
        f
        for f in httpx.get(
            f"{catalog['base']}/metadata/datasets/{quote(catalog['urn'], safe='')}", headers=catalog["op"]
        ).json()["fields"]
        if f["name"] == "citizen_id"
    )
    assert field["business"] == {"classification": "secret", "description": "18 位公民身份号码"}
    assert _business(catalog)["owner"] == "民政局户籍科"  # the dataset's own entries untouched

    # the owner is searchable, and the tag is a facet
    page.goto("/console/catalog?q=%E6%88%B7%E7%B1%8D%E7%A7%91")  # 户籍科
    assert page.locator(f'.hit[data-kind="dataset"][data-urn="{catalog["urn"]}"]').count() == 1
    page.goto("/console/catalog?q=residents")
    assert page.locator('[data-facet="tag"] a[data-value="户籍"]').count() == 1
    assert page.locator('[data-facet="classification"] a[data-value="sensitive"]').inner_text() == "敏感"
    page.locator('[data-facet="owner"] a[data-value="民政局户籍科"]').click()  # narrowed on the owner
    page.wait_for_selector('[data-facet="owner"] a.on')
    assert {h.get_attribute("data-urn") for h in page.locator(".hit").all()} == {catalog["urn"]}
    assert not problems, problems


def test_viewer_sees_no_edit_form_and_the_server_refuses(browser, catalog, shots):
    page, problems = new_page(browser, catalog)
    sign_in(page, VIEWER, PASSWORD)
    page.wait_for_url("**/console/")
    page.goto(f"/console/catalog/dataset?urn={quote(catalog['urn'], safe='')}")
    page.wait_for_selector("#fields-table")
    assert page.locator("#business-facts").count() == 1  # reads the business metadata
    assert page.locator("#business-form").count() == 0 and page.get_by_text("编辑业务元数据").count() == 0
    assert page.locator("#fields-form").count() == 0 and page.get_by_text("编辑字段分级和说明").count() == 0
    page.screenshot(path=str(shots / "dataset-viewer.png"), full_page=True)
    before = _business(catalog)
    csrf = json.loads(page.locator("body").get_attribute("hx-headers"))["X-CSRF-Token"]
    answer = page.request.post(
        "/console/catalog/dataset/business",
        headers={"X-CSRF-Token": csrf},
        form={"urn": catalog["urn"], "owner": "mallory"},
    )
    assert 'id="business-error"' in answer.text() and "metadata:manage" in answer.text()
    assert _business(catalog) == before
    refused = page.request.post(
        "/console/catalog/dataset/fields",
        form={"csrf_token": csrf, "urn": catalog["urn"], "class.citizen_id": "public"},
    )
    assert refused.status == 403 and 'id="fields-error"' in refused.text()
    assert _business(catalog) == before
    audit = httpx.get(
        f"{catalog['base']}/audit", headers=catalog["op"], params={"actor": VIEWER, "outcome": "denied"}
    ).json()
    assert any(e["path"].startswith("/metadata/datasets/") and e["status"] == 403 for e in audit), audit
    assert not problems, problems
    page.context.close()


def test_lineage_graph_at_dataset_and_field_level_with_impact(admin, catalog, shots):
    page, problems = admin
    page.goto(f"/console/catalog/dataset?urn={quote(catalog['urn'], safe='')}")
    page.get_by_role("link", name="血缘图").click()
    page.wait_for_selector('#lineage-graph[data-ready="true"] canvas')
    api = httpx.get(
        f"{catalog['base']}/lineage/{quote(catalog['urn'], safe='')}", headers=catalog["op"], params={"depth": 3}
    ).json()
    names = {n["dataset"].rsplit("/", 1)[-1] for n in api["nodes"]}
    assert {RAW, f"{RAW}.clean", f"{RAW}.quarantine"} <= names
    graph = page.locator("#lineage-graph")
    assert int(graph.get_attribute("data-nodes")) == len(api["nodes"])
    assert int(graph.get_attribute("data-edges")) == len(api["edges"])
    assert int(graph.get_attribute("data-impacted")) == len(api["nodes"]) - 1  # all downstream of a table
    assert f"{RAW}.clean" in page.locator("#impact-datasets").inner_text()
    assert "name_required" in page.locator("#impact-rules").inner_text()
    assert "民政局户籍科" not in page.locator("#impact-rules").inner_text()  # the table's own owner: not downstream
    page.screenshot(path=str(shots / "lineage-dataset.png"), full_page=True)

    # field level, from the fields table: name -> raw name -> clean full_name (renamed), guarded by the rule
    page.goto(f"/console/catalog/dataset?urn={quote(catalog['urn'], safe='')}")
    page.get_by_role("link", name="字段 name 的血缘", exact=True).click()
    page.wait_for_selector('#lineage-graph[data-ready="true"] canvas')
    assert page.locator("#l-level").input_value() == "field" and page.locator("#l-field").input_value() == "name"
    fields = page.locator("#impact-fields").inner_text()
    assert f"{RAW}#name" in fields and f"{RAW}.clean#full_name" in fields
    data = json.loads(page.locator("#lineage-graph-data").inner_text())
    impacted = {n["id"].rsplit("/", 1)[-1] for n in data["nodes"] if n["impacted"]}
    assert {f"{RAW}#name", f"{RAW}.clean#full_name"} <= impacted
    assert int(page.locator("#lineage-graph").get_attribute("data-impacted")) == len(impacted)
    assert any(e["label"] == "原样" and e["to"].endswith(".clean#full_name") for e in data["edges"])
    page.screenshot(path=str(shots / "lineage-field.png"), full_page=True)

    # upstream of the masked clean field: the form switches the direction
    page.get_by_label("字段", exact=True).select_option("phone")
    page.get_by_label("方向").select_option("downstream")
    page.get_by_role("button", name="显示").click()
    page.wait_for_selector('#lineage-graph[data-ready="true"] canvas')
    data = json.loads(page.locator("#lineage-graph-data").inner_text())
    assert any(e["label"] == "变换 · 脱敏" and e["to"].endswith(".clean#phone") for e in data["edges"])
    assert {n["side"] for n in data["nodes"]} == {"root", "down"}
    assert not problems, problems


def test_data_map_with_asset_chart_drills_into_a_system(admin, catalog, shots):
    page, problems = admin
    page.goto("/console/catalog")
    page.get_by_role("link", name="数据地图").click()
    page.wait_for_selector('#map-graph[data-ready="true"] canvas')
    page.wait_for_selector("#chart-assets canvas")
    mine = _as(catalog, ADMIN)
    found = httpx.get(f"{catalog['base']}/map", headers=mine).json()
    summary = httpx.get(f"{catalog['base']}/assets/summary", headers=mine).json()
    assert int(page.locator("#map-graph").get_attribute("data-nodes")) == len(found["nodes"])
    assert int(page.locator("#map-graph").get_attribute("data-edges")) == len(found["edges"]) >= 1
    datasets = page.locator('#asset-totals [data-key="datasets"] dd').inner_text()
    assert datasets == f"{summary['totals']['datasets']:,}"
    chart = page.locator("#chart-assets")
    assert int(chart.get_attribute("data-categories")) == len(summary["by_system"])
    assert chart.get_attribute("data-series") == "3"
    page.screenshot(path=str(shots / "data-map.png"), full_page=True)

    page.locator("#map-nodes").get_by_role("link", name=SYSTEM, exact=True).click()  # drill down to its datasets
    page.wait_for_selector('#map-graph[data-ready="true"] canvas')
    assert "system=" in page.url
    assert page.locator(f'#map-nodes [data-node="{catalog["urn"]}"]').count() == 1
    page.locator(f'#map-nodes [data-node="{catalog["urn"]}"] a').click()
    page.wait_for_selector("#fields-table")
    assert not problems, problems


def test_another_tenant_finds_nothing_and_english_works(browser, catalog):
    page, problems = new_page(browser, catalog)
    sign_in(page, OTHER, PASSWORD)
    page.wait_for_url("**/console/")
    page.goto("/console/catalog?q=%E8%BA%AB%E4%BB%BD%E8%AF%81")  # 身份证
    assert page.locator(f'.hit[data-urn="{catalog["urn"]}"]').count() == 0
    answer = page.goto(f"/console/catalog/dataset?urn={quote(catalog['urn'], safe='')}")
    assert answer.status == 404 and "no such dataset" in page.locator("#dataset-error").inner_text()
    answer = page.goto(f"/console/catalog/lineage?urn={quote(catalog['urn'], safe='')}")
    assert answer.status == 404 and page.locator("#lineage-graph").count() == 0
    page.goto("/console/catalog?lang=en")
    assert page.locator("h1").inner_text() == "Data catalogue"
    assert page.get_by_role("link", name="Catalogue", exact=True).count() == 1
    page.goto("/console/catalog/map")
    assert page.locator("h1").inner_text() == "Data map"
    assert problems == ["Failed to load resource: the server responded with a status of 404 (Not Found)"] * 2
    page.context.close()


# --- schema changes, reported lineage, harvest and assets (issue 15's remaining console pages) ---

NARROWED = [
    {"kind": "narrowed", "column": "citizen_id", "old_type": "VARCHAR(18)", "new_type": "VARCHAR(10)", "key": False}
]
ADDED = [{"kind": "added", "column": "email", "old_type": None, "new_type": "VARCHAR(100)", "key": False}]


def _held_change(stack_settings, digest: str) -> int:
    """A held (incompatible) change of the residents table as the capture task records one: the
    narrowing itself is tested end to end in tests/test_schema_evolution*.py; here the page's part."""
    from connectors.schema_change_store import SchemaChangeStore

    store = SchemaChangeStore(stack_settings.resolved_control_db_url)
    reason = "incompatible: column citizen_id narrowed: VARCHAR(18) -> VARCHAR(10)"
    return store.add(
        TENANT, SOURCE, f"{SCHEMA}.residents", digest, NARROWED, compatible=0, status="held", reason=reason
    )


def _changes(catalog) -> dict[int, dict]:
    r = httpx.get(f"{catalog['base']}/connectors/{SOURCE}/schema-changes", headers=catalog["op"], timeout=30)
    return {c["id"]: c for c in r.json()}


def test_schema_changes_listed_and_a_held_one_accepted(admin, catalog, stack_settings, shots):
    from connectors.schema_change_store import SchemaChangeStore

    SchemaChangeStore(stack_settings.resolved_control_db_url).add(
        TENANT, SOURCE, f"{SCHEMA}.residents", "followed-" + RUN, ADDED, compatible=1, status="applied"
    )
    held = _held_change(stack_settings, "held-" + RUN)
    page, problems = admin
    page.goto("/console/catalog")
    page.get_by_role("link", name="表结构变更").click()
    page.wait_for_url("**/console/catalog/schema-changes")
    row = page.locator(f'#sc-table tr[data-change="{held}"]')
    assert row.get_attribute("data-status") == "held" and "已暂停" in row.inner_text() and "不兼容" in row.inner_text()
    assert "收窄" in row.inner_text() and "VARCHAR(18)" in row.inner_text() and "VARCHAR(10)" in row.inner_text()
    assert page.locator('#sc-table tr[data-status="applied"]').first.inner_text().count("已跟随") == 1
    page.goto(f"/console/connectors?q={SOURCE}")  # per connector, from its row on the connectors page
    page.get_by_role("link", name=f"表结构变更 {SOURCE}").click()
    page.wait_for_url(f"**connector={SOURCE}")
    assert page.locator("#sc-connector").input_value() == SOURCE
    page.get_by_label("状态", exact=True).select_option("held")
    page.locator("#sc-show").click()
    page.wait_for_url("**status=held**")
    assert {r.get_attribute("data-status") for r in page.locator("#sc-table tbody tr").all()} == {"held"}
    page.screenshot(path=str(shots / "schema-changes.png"), full_page=True)

    page.locator(f"#mode-{held}").select_option("new_version")
    page.locator(f"#accept-{held}").click()
    page.wait_for_selector("#sc-accepted")
    row = page.locator(f'#sc-table tr[data-change="{held}"]')
    assert (
        row.get_attribute("data-status") == "accepted"
        and "新模式版本" in row.inner_text()
        and ADMIN in row.inner_text()
    )
    assert row.locator("button").count() == 0
    change = _changes(catalog)[held]
    assert change["status"] == "accepted" and change["mode"] == "new_version" and change["decided_by"] == ADMIN
    audit = httpx.get(
        f"{catalog['base']}/audit",
        headers=catalog["op"],
        params={"actor": ADMIN, "action": "connector.schema_change.accept"},
    ).json()
    assert any(e["outcome"] == "success" for e in audit), audit
    page.screenshot(path=str(shots / "schema-change-accepted.png"), full_page=True)
    assert not problems, problems


def test_viewer_cannot_accept_a_schema_change_or_harvest(browser, catalog, stack_settings):
    held = _held_change(stack_settings, "viewer-" + RUN)
    page, problems = new_page(browser, catalog)
    sign_in(page, VIEWER, PASSWORD)
    page.wait_for_url("**/console/")
    page.goto("/console/catalog/schema-changes")
    assert "connector:manage" in page.locator("#sc-error").inner_text()
    assert page.locator(".accept-form").count() == 0
    csrf = json.loads(page.locator("body").get_attribute("hx-headers"))["X-CSRF-Token"]
    refused = page.request.post(
        "/console/catalog/schema-changes/accept",
        form={"csrf_token": csrf, "connector": SOURCE, "id": str(held), "mode": "new_version"},
    )
    assert refused.status == 403 and "connector:manage" in refused.text()
    assert _changes(catalog)[held]["status"] == "held"
    others = httpx.get(f"{catalog['base']}/schema-changes", headers=_as(catalog, OTHER), timeout=30)
    assert others.status_code == 200 and not [c for c in others.json() if c["connector"] == SOURCE]
    page.goto("/console/catalog/harvest")
    assert page.locator("#systems-table").count() == 1 and page.locator("#harvest-form").count() == 0
    answer = page.request.post("/console/catalog/harvest", headers={"X-CSRF-Token": csrf}, form={})
    assert 'id="harvest-error"' in answer.text() and "metadata:manage" in answer.text()
    assert not problems, problems
    page.context.close()


EXTERNAL = "postgres://dw.example:5432"
COPY = f"hl:dataset:{EXTERNAL}/dw.public.residents_copy_{RUN}"


def test_reported_lineage_is_listed_and_drawn_dashed(admin, catalog, shots):
    mine = _as(catalog, ADMIN)
    edges = {
        "job": f"erp-copy-{RUN}",
        "edges": [{"source": catalog["urn"], "target": COPY}],
    }
    r = httpx.post(f"{catalog['base']}/lineage/edges", headers=mine, json=edges, timeout=30)
    assert r.status_code == 200, r.text
    event = {
        "eventType": "COMPLETE",
        "eventTime": "2026-12-06T10:00:00Z",
        "producer": "https://example.org/etl/v1",
        "run": {"runId": str(uuid.uuid4())},
        "job": {"namespace": "etl", "name": f"nightly-{RUN}"},
        "inputs": [{"namespace": EXTERNAL, "name": f"dw.public.residents_copy_{RUN}"}],
        "outputs": [{"namespace": EXTERNAL, "name": f"dw.public.report_{RUN}"}],
    }
    r = httpx.post(f"{catalog['base']}/api/v1/lineage", headers=mine, json=event, timeout=30)
    assert r.status_code == 200, r.text

    others = httpx.get(f"{catalog['base']}/lineage-reports", headers=_as(catalog, OTHER), timeout=30).json()
    assert not [r for r in others if RUN in r["job"]]  # another tenant sees none of them
    page, problems = admin
    page.goto("/console/catalog")
    page.get_by_role("link", name="外部上报血缘").click()
    page.wait_for_selector("#reported-table")
    api_row = page.locator(f'#reported-table tr[data-job="hl:job:huiliu/api/erp-copy-{RUN}"]')
    assert "血缘接口" in api_row.inner_text() and ADMIN in api_row.inner_text()
    assert api_row.locator('[data-key="edges"]').inner_text() == "1"
    ol_row = page.locator('#reported-table tr[data-via="openlineage"]').filter(has_text=f"nightly-{RUN}")
    assert "https://example.org/etl/v1" in ol_row.inner_text() and f"report_{RUN}" in ol_row.inner_text()
    assert page.locator("#reported-table tbody tr").first.get_attribute("data-via") == "openlineage"  # newest first
    page.screenshot(path=str(shots / "reported-lineage.png"), full_page=True)

    page.goto(f"/console/catalog/lineage?urn={quote(catalog['urn'], safe='')}&direction=downstream")
    page.wait_for_selector('#lineage-graph[data-ready="true"] canvas')
    data = json.loads(page.locator("#lineage-graph-data").inner_text())
    reported = [e for e in data["edges"] if e["reported"]]
    assert {(e["from"], e["to"]) for e in reported} >= {(catalog["urn"], COPY)}
    own = [e for e in data["edges"] if not e["job"].startswith(("hl:job:huiliu/api/", "hl:job:huiliu/etl/"))]
    assert own and not any(e["reported"] for e in own)  # Huiliu's own edges drawn as before
    assert int(page.locator("#lineage-graph").get_attribute("data-reported")) == len(reported)
    assert page.locator(".legend-reported").inner_text() == "外部上报（虚线）"
    page.screenshot(path=str(shots / "lineage-reported.png"), full_page=True)
    assert not problems, problems


def test_harvest_page_shows_triggers_and_harvests_now_with_progress(admin, catalog, shots):
    schedule = {
        "name": f"harvest-{RUN}",
        "action": "metadata.harvest",
        "params": {"connectors": [SOURCE]},
        "cron": "0 2 * * *",
        "tenant": TENANT,
    }
    r = httpx.post(f"{catalog['base']}/schedules", headers=catalog["op"], json=schedule, timeout=30)
    assert r.status_code == 201, r.text
    page, problems = admin
    page.goto("/console/catalog")
    page.get_by_role("link", name="采集", exact=True).click()
    page.wait_for_selector("#systems-table")
    system = page.locator("#systems-table tbody tr").filter(has_text=SYSTEM).first
    before = float(system.locator('[data-key="harvested_at"]').get_attribute("data-epoch"))
    assert system.locator('[data-key="harvested_at"]').inner_text().startswith("20")
    assert "已开启" in page.locator('#harvest-triggers [data-trigger="start"]').inner_text()
    scheduled = page.locator(f'#harvest-schedules tr[data-schedule="harvest-{RUN}"]')
    assert "0 2 * * *" in scheduled.inner_text() and SOURCE in scheduled.inner_text()

    page.evaluate("window.__sameDocument = true")
    page.get_by_label("连接器", exact=True).select_option(SOURCE)
    page.get_by_role("button", name="开始采集").click()
    page.wait_for_selector("#harvest-job tr[data-job]")
    page.wait_for_selector('#harvest-job[data-state="succeeded"]', timeout=120_000)  # polled, no reload
    assert page.evaluate("window.__sameDocument === true")
    assert "100" in page.locator("#harvest-job progress").get_attribute("value")
    assert page.locator("#harvest-job td").first.inner_text() == "元数据采集"  # the job kind, labelled
    assert page.locator("#harvest-job td.detail").inner_text() == "1 个连接器：新增 0 个数据集，变更 0 个，错误 0 个"
    page.screenshot(path=str(shots / "harvest.png"), full_page=True)
    page.locator("#harvest-done a").click()
    page.wait_for_selector("#systems-table")
    system = page.locator("#systems-table tbody tr").filter(has_text=SYSTEM).first
    assert float(system.locator('[data-key="harvested_at"]').get_attribute("data-epoch")) > before
    assert not problems, problems


def test_assets_page_totals_and_charts(admin, catalog, shots):
    r = httpx.patch(
        f"{catalog['base']}/metadata/datasets/{quote(catalog['urn'], safe='')}",
        headers=catalog["op"],
        json={"classification": "sensitive"},
        timeout=30,
    )
    assert r.status_code == 200, r.text
    page, problems = admin
    page.goto("/console/catalog")
    page.get_by_role("link", name="资产统计").click()
    page.wait_for_selector("#chart-classification canvas")
    summary = httpx.get(f"{catalog['base']}/assets/summary", headers=_as(catalog, ADMIN)).json()
    totals = page.locator("#asset-totals")
    assert totals.locator('[data-key="datasets"] dd').inner_text() == f"{summary['totals']['datasets']:,}"
    assert totals.locator('[data-key="fields"] dd').inner_text() == f"{summary['totals']['fields']:,}"
    for key in ("system", "department", "classification"):
        chart = page.locator(f"#chart-{key}")
        assert int(chart.get_attribute("data-categories")) == len(summary[f"by_{key}"]) >= 1
        assert chart.get_attribute("data-series") == "3"
        assert page.locator(f"#table-{key} tbody tr").count() == len(summary[f"by_{key}"])
    sensitive = next(c for c in summary["by_classification"] if c["classification"] == "sensitive")
    row = page.locator('#table-classification tr[data-group="sensitive"]')
    assert row.locator("th").inner_text() == "敏感"
    assert row.locator('[data-key="datasets"]').inner_text() == f"{sensitive['datasets']:,}"
    assert "未设置" in page.locator("#table-department").inner_text()
    page.screenshot(path=str(shots / "assets.png"), full_page=True)
    page.goto("/console/catalog/assets?lang=en")
    assert page.locator("h1").inner_text() == "Asset statistics"
    page.goto("/console/catalog/assets?lang=zh-CN")

    # the dataset's own statistics (GET /metadata/datasets/{urn} `stats`) on its page
    page.goto(f"/console/catalog/dataset?urn={quote(catalog['urn'], safe='')}")
    page.wait_for_selector("#fields-table")
    found = httpx.get(f"{catalog['base']}/metadata/datasets/{quote(catalog['urn'], safe='')}", headers=catalog["op"])
    stats = found.json().get("stats")
    card = page.locator("#dataset-stats")
    if stats is None:  # an API without per-dataset statistics: no empty card
        assert card.count() == 0
    else:
        assert card.locator('[data-key="consumers"] dd').inner_text() == str(len(stats["consumers"])) != "0"
        assert card.locator('[data-key="events_read"] dd').inner_text() == f"{stats['events_read']:,}"
        assert card.locator('[data-key="last_change"] dd').inner_text().startswith("20")
        page.screenshot(path=str(shots / "dataset-stats.png"), full_page=True)
    assert not problems, problems
