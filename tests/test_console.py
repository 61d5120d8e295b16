"""The web console's pieces that need no browser: catalogues, routes and their tenant rules,
vendored libraries, metric parsing, dates. The pages themselves: tests/test_console_browser.py."""

from __future__ import annotations

import re

import pytest

from api.console import i18n
from api.console.pages_ops import metric_samples
from api.console.pages_pipelines import graph_json, node_counts
from api.console.routes import PAGES
from api.tenancy_rules import CONSOLE_ROUTES, RULES
from deploy import console_assets

# keys built in templates from a prefix and a value the API reports: each prefix's known values
DYNAMIC = {
    "lang.": set(i18n.LANGUAGES),
    "graph.": {"source", "topic", "transform", "rule", "sink"},
    "connectors.": {"pause", "resume", "restart"},
    "pipelines.done_": {"deploy", "undeploy"},
    "versions.": {"added", "changed", "removed"},
    "versions.op_": {"add", "remove", "replace"},
    "versions.made_": {"create", "update", "rollback", "delete"},
    "assets.by_": {"system", "department", "classification"},
    "assets.group_": {"system", "department", "classification"},
}


def _keys(lang: str) -> set[str]:
    return set(i18n.catalogue(lang).messages)


def test_both_catalogues_have_the_same_keys():
    zh, en = _keys("zh-CN"), _keys("en")
    assert len(zh) > 80
    assert zh == en, f"only in zh-CN: {sorted(zh - en)}; only in en: {sorted(en - zh)}"


def test_catalogues_translate_and_keep_placeholders():
    zh, en = i18n.catalogue("zh-CN").messages, i18n.catalogue("en").messages
    for key in zh:
        assert zh[key] and en[key], key
        assert re.findall(r"%\((\w+)\)s", zh[key]) == re.findall(r"%\((\w+)\)s", en[key]), key
    assert zh["nav.overview"] == "概览" and en["nav.overview"] == "Overview"


def test_every_text_of_the_templates_is_a_catalogue_key():
    used: set[str] = set()
    for template in i18n.TEMPLATES.glob("*.html"):
        text = template.read_text()
        used |= set(re.findall(r"""_\(["']([\w.-]+)["'](?!\s*~)""", text))
        for prefix in re.findall(r"""_\(["']([\w.-]+)["'] ~""", text):
            used |= {prefix + value for value in DYNAMIC[prefix]}
        # no visible text outside tags and expressions: every word comes from the catalogue
        stripped = re.sub(r"{%.*?%}|{{.*?}}|{#.*?#}|<[^>]*>", " ", text, flags=re.S)
        assert not re.findall(r"[A-Za-z\u4e00-\u9fff]{2,}", stripped), (template.name, stripped.split())
    keys = _keys("zh-CN")
    assert used, "no keys found"
    assert not used - keys, f"keys used but not in the catalogues: {sorted(used - keys)}"


def test_dates_are_shown_in_shanghai_time():
    assert i18n.localtime("2026-12-06T16:00:00Z") == "2026-12-07 00:00:00"
    assert i18n.localtime(0, "Asia/Shanghai") == "1970-01-01 08:00:00"
    assert i18n.localtime("2026-12-06T16:00:00Z", "UTC") == "2026-12-06 16:00:00"
    assert i18n.localtime(None) == ""


def _console_routes() -> set[str]:
    found = set()
    for module in PAGES:
        for route in module.router.routes:
            for method in route.methods - {"HEAD"}:
                found.add(f"{method} /console{route.path}")
    return found


def test_every_console_route_has_a_tenant_rule():
    routes = _console_routes()
    assert "POST /console/login" in routes and "GET /console/pipelines/{name}" in routes
    assert routes == set(CONSOLE_ROUTES), (
        f"undeclared: {sorted(routes - set(CONSOLE_ROUTES))}; gone: {sorted(set(CONSOLE_ROUTES) - routes)}"
    )
    assert set(CONSOLE_ROUTES.values()) <= set(RULES)


def test_console_pages_are_not_in_the_openapi_document(tmp_path):
    from api.app import create_app
    from deploy.settings import Settings

    app = create_app(Settings(state_dir=tmp_path))
    paths = app.openapi()["paths"]
    assert "/pipelines/{name}/graph" in paths
    assert not [p for p in paths if p.startswith("/console")]


def test_vendored_libraries_match_their_manifest():
    assert console_assets.check() == []
    for lib in console_assets.LIBRARIES:
        assert (console_assets.VENDOR / lib.name / "LICENSE").stat().st_size > 500
        assert lib.integrity.startswith("sha512-")


def test_a_changed_vendored_file_is_found(monkeypatch, tmp_path):
    import shutil

    copy = tmp_path / "vendor"
    shutil.copytree(console_assets.VENDOR, copy)
    (copy / "htmx.org" / "htmx.min.js").write_text("alert(1)")
    monkeypatch.setattr(console_assets, "VENDOR", copy)
    monkeypatch.setattr(console_assets, "MANIFEST", copy / "manifest.json")
    assert console_assets.check() == ["htmx.org: htmx.min.js is missing or differs from the manifest"]


def test_metric_samples_sum_stage_counters_and_lag_per_group():
    text = (
        "# TYPE huiliu_stage_events counter\n"
        'huiliu_stage_events_total{pipeline="p",stage="source",metric="read"} 10.0\n'
        'huiliu_stage_events_total{pipeline="p",stage="sink",metric="written"} 7.0\n'
        "# TYPE huiliu_consumer_lag gauge\n"
        'huiliu_consumer_lag{group="g",topic="t",partition="0"} 3.0\n'
        'huiliu_consumer_lag{group="g",topic="t",partition="1"} 4.0\n'
    )
    assert metric_samples(text) == {"stages": {"p/source/read": 10.0, "p/sink/written": 7.0}, "lag": {"g": 7.0}}


def test_stage_counters_land_on_the_graph_nodes():
    stages = {
        "source": {"read": 10},
        "runner": {"read": 10, "valid": 7, "quarantined": 3, "quarantined.phone_format": 2, "quarantined.name": 1},
        "sink": {"written": 7},
    }
    assert node_counts(stages) == {
        "source": 10,
        "topic:raw": 10,
        "topic:clean": 7,
        "topic:quarantine": 3,
        "rule:phone_format": 2,
        "rule:name": 1,
        "sink": 7,
    }
    assert node_counts({}) == {}


def test_graph_json_cannot_close_its_script_element():
    text = graph_json({"nodes": [{"label": "</script><script>alert(1)</script>"}]})
    assert "</script>" not in text and "\\u003c/script\\u003e" in text


@pytest.mark.parametrize("target", ["//evil.example/", "https://evil.example/console/", "/console\\..\\x", ""])
def test_sign_in_never_redirects_off_the_console(target):
    from api.console.pages_auth import _next

    assert _next(target) == "/console/"


def test_a_session_is_renewed_before_its_token_expires_and_ends_after_12_hours(tmp_path):
    """In-process (SQLite control DB of its own): the renewal and the 12-hour cap of session.py."""
    import hashlib
    import hmac
    import time

    import jwt
    from fastapi.testclient import TestClient

    from api.app import create_app
    from api.identity.store import store_for
    from deploy.settings import Settings

    app = create_app(Settings(state_dir=tmp_path))
    store = store_for(app.state.settings.resolved_control_db_url)
    user = store.create_user("renew-me", "Renewal-pass-123", tenant="default", roles=["viewer"])
    key = app.state.jwt_key
    now = int(time.time())

    def cookie(exp: int, since: int) -> str:
        claims = {"sub": "renew-me", "uid": user["user_id"], "gen": user["generation"], "tenant": "default"}
        token = jwt.encode({**claims, "typ": "access", "jti": "j", "iat": now, "exp": exp}, key, algorithm="HS256")
        signed = hmac.new(key.encode(), f"since:renew-me:{since}".encode(), hashlib.sha256).hexdigest()
        return f"huiliu_session={token}; huiliu_since={since}.{signed}"

    client = TestClient(app, follow_redirects=False)
    fresh = client.get("/console/pipelines", headers={"Cookie": cookie(now + 900, now)})
    assert fresh.status_code == 200 and "huiliu_session=" not in fresh.headers.get("set-cookie", "")

    ending = client.get("/console/pipelines", headers={"Cookie": cookie(now + 120, now - 3600)})
    assert ending.status_code == 200
    renewed = re.search(r"huiliu_session=([^;]+);[^,]*HttpOnly", ending.headers["set-cookie"], re.I).group(1)
    claims = jwt.decode(renewed, key, algorithms=["HS256"])
    assert claims["exp"] >= now + 800 and claims["uid"] == user["user_id"] and claims["gen"] == user["generation"]
    csrf = hmac.new(key.encode(), f"csrf:renew-me:{now - 3600}".encode(), hashlib.sha256).hexdigest()
    assert csrf in ending.text  # the page's CSRF token outlives the renewal

    too_old = now - 13 * 3600
    ended = client.get("/console/pipelines", headers={"Cookie": cookie(now + 900, too_old)})
    assert ended.status_code == 303 and ended.headers["location"].endswith("expired=1")
    forged = client.get("/console/pipelines", headers={"Cookie": cookie(now + 900, now).replace("huiliu_since=", "x=")})
    assert forged.status_code == 303


def test_a_failed_tasks_reason_is_shown_as_text_and_escaped():
    row = {
        "name": "a.b",
        "plugin": "files",
        "type": "source",
        "state": "FAILED",
        "tasks": [{"id": 0, "state": "FAILED", "detail": "boom <script>"}, {"id": 1, "state": "RUNNING"}],
    }
    html = i18n.environment("en").get_template("_connector_row.html").render(row=row, row_error=None)
    assert '<p class="detail" data-task="0">#0: boom &lt;script&gt;</p>' in html
    assert 'data-task="1"' not in html and "#0 Failed</span>" in html and "#1 Running</span>" in html
    assert 'id="connector-a-b"' in html and 'hx-post="/console/connectors/a.b/pause"' in html


def test_catalogue_edit_sends_only_what_changed_and_clears_emptied_values():
    from api.console.pages_catalog import _patch_of

    current = {"owner": "a", "steward": "s", "tags": ["x"], "classification": "internal"}
    form = {"owner": "b", "steward": "", "tags": "x，新 , ", "classification": "internal", "description": ""}
    assert _patch_of(form, current) == {"owner": "b", "steward": None, "tags": ["x", "新"]}
    assert _patch_of({"owner": "a", "steward": "s", "tags": "x", "classification": "internal"}, current) == {}


def test_catalogue_field_edit_sends_only_changed_fields():
    from api.console.pages_catalog import _field_patch

    fields = [{"name": "a", "business": {"classification": "secret"}}, {"name": "b", "business": {}}]
    form = {"class.a": "secret", "desc.a": "", "class.b": "", "desc.b": "新说明"}
    assert _field_patch(form, fields) == {"b": {"description": "新说明"}}
    assert _field_patch({"class.a": ""}, fields) == {"a": {"classification": None}}


def test_catalogue_lineage_sides_and_impact():
    from api.console.i18n import catalogue
    from api.console.pages_catalog import _lineage_graph, changes_of

    lineage = {
        "root": "t#name",
        "level": "field",
        "nodes": [
            {"id": "t#name", "dataset": "t", "field": "name", "hops": 0, "name": "s.t"},
            {"id": "raw#name", "dataset": "raw", "field": "name", "hops": 1},
            {"id": "up#n", "dataset": "up", "field": "n", "hops": 1},
        ],
        "edges": [
            {
                "source": "t#name",
                "target": "raw#name",
                "job": "j",
                "transformation": {"subtype": "TRANSFORMATION", "masking": True},
            },
            {"source": "up#n", "target": "t#name", "job": "k", "transformation": None},
        ],
    }
    impact = {"fields": ["raw#name"], "datasets": ["raw"]}
    graph = _lineage_graph(lineage, impact, "name")
    nodes = {n["id"]: n for n in graph["nodes"]}
    assert [nodes[i]["side"] for i in ("t#name", "raw#name", "up#n")] == ["root", "down", "up"]
    assert [nodes[i]["impacted"] for i in ("t#name", "raw#name", "up#n")] == [False, True, False]
    assert nodes["t#name"]["label"] == "s.t.name" and nodes["up#n"]["label"] == "up.n"
    # the page's language labels the edges (zh by default); a subtype no catalogue knows stays as it came
    assert graph["edges"][0]["label"] == "变换 · 脱敏" and graph["edges"][1]["label"] == ""
    english = _lineage_graph(lineage, impact, "name", catalogue("en"))
    assert english["edges"][0]["label"] == "transformation · masked"
    lineage["edges"][1]["transformation"] = {"subtype": "VENDOR_SPECIFIC"}
    assert _lineage_graph(lineage, impact, "name")["edges"][1]["label"] == "VENDOR_SPECIFIC"
    assert changes_of({"added": [{}], "removed": [], "kind_changed": {"from": "a"}}) == [
        ("added", 1),
        ("kind_changed", 1),
    ]


def test_catalogue_dataset_page_escapes_what_the_source_says():
    ds = {
        "urn": "hl:dataset:postgres://h:5432/d.s.t",
        "name": "s.t",
        "kind": "table",
        "system": "hl:system:postgres://h:5432/d",
        "comment": "<script>alert(1)</script>",
        "version": 1,
        "business": {"owner": "<b>x</b>"},
        "fields": [
            {"name": "c", "type": "TEXT", "nullable": True, "key": False, "comment": "<img src=x>", "business": {}}
        ],
    }
    html = (
        i18n.environment("zh-CN")
        .get_template("dataset.html")
        .render(
            ds=ds,
            versions=[],
            can_edit=False,
            classifications=(),
            zone="UTC",
            path="/console/catalog/dataset",
            languages=[],
            session=None,
            lang="zh-CN",
            htmx_config="{}",
        )
    )
    assert "<script>alert" not in html and "&lt;script&gt;alert(1)&lt;/script&gt;" in html
    assert "<img src=x>" not in html and "&lt;b&gt;x&lt;/b&gt;" in html
    assert 'id="business-form"' not in html  # no edit form without metadata:manage
