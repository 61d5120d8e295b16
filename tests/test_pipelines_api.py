"""Pipeline documents over HTTP: CRUD, versions, diff, rollback, optimistic locking, graph,
component catalogue, secret redaction, tenant isolation and their audit entries.

Tenant isolation answers 404 (not 403) for another tenant's pipeline, so a caller cannot learn
which names exist elsewhere; only `POST /pipelines` with a taken name says 409 (names are global).
"""

from __future__ import annotations

import copy
import sqlite3
from concurrent.futures import ThreadPoolExecutor

import httpx
import pytest

from tests.api_process import own_state_settings  # noqa: F401 - a fixture: overrides stack_settings
from tests.support.identity import login, make_user, op, start_keyed_api
from tests.support.pipelines import document


@pytest.fixture(scope="module")
def api(stack_settings):
    proc, base, key = start_keyed_api(stack_settings)
    make_user(base, key, "pl-dev-a", roles=["developer"], tenant="tenant-a")
    make_user(base, key, "pl-dev-a2", roles=["developer"], tenant="tenant-a")
    make_user(base, key, "pl-dev-b", roles=["developer"], tenant="tenant-b")
    make_user(base, key, "pl-viewer-a", roles=["viewer"], tenant="tenant-a")
    yield base, key
    proc.terminate()
    proc.wait(10)


def test_crud_versions_diff_and_rollback(api):
    base, _ = api
    dev = login(base, "pl-dev-a")
    r = httpx.post(base + "/pipelines", headers=dev, json=document("pl-crud"))
    assert r.status_code == 201, r.text
    body = r.json()
    assert body["version"] == 1 and r.headers["etag"] == '"1"'
    assert body["tenant"] == "tenant-a" and body["owner"] == "pl-dev-a"
    assert httpx.post(base + "/pipelines", headers=dev, json=document("pl-crud")).status_code == 409

    edited = copy.deepcopy(body["document"])
    edited["description"] = "second"
    edited["transforms"].append({"kind": "rename", "mapping": {"phone": "mobile"}})
    r = httpx.put(base + "/pipelines/pl-crud", headers={**dev, "If-Match": '"1"'}, json=edited)
    assert r.status_code == 200, r.text
    assert r.json()["version"] == 2 and r.headers["etag"] == '"2"'

    versions = httpx.get(base + "/pipelines/pl-crud/versions", headers=dev).json()
    assert [(v["version"], v["op"], v["author"]) for v in versions] == [
        (1, "create", "pl-dev-a"),
        (2, "update", "pl-dev-a"),
    ]
    changes = httpx.get(base + "/pipelines/pl-crud/diff", headers=dev, params={"from": 1, "to": 2}).json()["changes"]
    assert {"op": "replace", "path": "/description", "old": "population register", "value": "second"} in changes
    assert any(c["op"] == "add" and c["path"] == "/transforms/1" for c in changes)

    r = httpx.post(base + "/pipelines/pl-crud/rollback", headers=dev, json={"version": 1})
    assert r.status_code == 200 and r.json()["version"] == 3
    assert r.json()["document"]["description"] == "population register"
    assert httpx.get(base + "/pipelines/pl-crud/diff", headers=dev, params={"from": 1, "to": 3}).json()["changes"] == []
    assert httpx.get(base + "/pipelines/pl-crud/versions/2", headers=dev).json()["document"]["description"] == "second"

    assert httpx.delete(base + "/pipelines/pl-crud", headers=dev).status_code == 204
    assert httpx.get(base + "/pipelines/pl-crud", headers=dev).status_code == 404
    r = httpx.post(base + "/pipelines", headers=dev, json=document("pl-crud"))
    assert r.status_code == 201 and r.json()["version"] == 5  # history kept: 4 was the deletion


def test_a_stale_save_is_refused_and_nothing_is_lost(api):
    base, _ = api
    alice, bob = login(base, "pl-dev-a"), login(base, "pl-dev-a2")
    doc = httpx.post(base + "/pipelines", headers=alice, json=document("pl-race")).json()["document"]
    mine, theirs = copy.deepcopy(doc), copy.deepcopy(doc)
    mine["description"], theirs["description"] = "alice's", "bob's"
    assert httpx.put(base + "/pipelines/pl-race", headers={**alice, "If-Match": '"1"'}, json=mine).status_code == 200
    r = httpx.put(base + "/pipelines/pl-race", headers={**bob, "If-Match": '"1"'}, json=theirs)
    assert r.status_code == 409 and "current version is 2" in r.json()["detail"] and r.headers["etag"] == '"2"'
    assert httpx.get(base + "/pipelines/pl-race", headers=bob).json()["document"]["description"] == "alice's"
    assert httpx.put(base + "/pipelines/pl-race", headers=bob, json=theirs).status_code == 428

    # Truly concurrent saves from the same base: exactly one wins.
    def save(i):
        d = copy.deepcopy(doc)
        d["description"] = f"writer {i}"
        return httpx.put(base + "/pipelines/pl-race", headers={**alice, "If-Match": '"2"'}, json=d).status_code

    with ThreadPoolExecutor(6) as pool:
        codes = sorted(pool.map(save, range(6)))
    assert codes == [200] + [409] * 5
    assert [v["version"] for v in httpx.get(base + "/pipelines/pl-race/versions", headers=alice).json()] == [1, 2, 3]


def test_invalid_documents_are_refused_with_the_reason(api):
    base, _ = api
    dev = login(base, "pl-dev-a")
    bad = document("pl-bad", transforms=[{"kind": "teleport"}])
    r = httpx.post(base + "/pipelines", headers=dev, json=bad)
    assert r.status_code == 422 and "teleport" in r.text
    bad = document("pl-bad")
    del bad["source"]["config"]["timestamp_column"]
    r = httpx.post(base + "/pipelines", headers=dev, json=bad)
    assert r.status_code == 422 and "timestamp_column" in r.text and "Sup3rSecret" not in r.text
    # the runner: an unknown kind, a parallelism below 1 (issue 19: runner kind flink)
    for runner, field in (({"kind": "spark"}, "kind"), ({"kind": "flink", "parallelism": 0}, "parallelism")):
        r = httpx.post(base + "/pipelines", headers=dev, json={**document("pl-bad"), "runner": runner})
        assert r.status_code == 422 and any(e["loc"][-2:] == ["runner", field] for e in r.json()["detail"]), r.text
    flink = {**document("pl-flink"), "runner": {"kind": "flink", "parallelism": 2}}
    assert httpx.post(base + "/pipelines", headers=dev, json=flink).status_code == 201


def test_connection_passwords_are_masked_in_responses_and_kept_on_save(api, stack_settings):
    base, _ = api
    dev = login(base, "pl-dev-a")
    r = httpx.post(base + "/pipelines", headers=dev, json=document("pl-secret"))
    assert "Sup3rSecret" not in r.text and "etl:****@db.example" in r.text
    doc = r.json()["document"]
    doc["description"] = "edited through a console"
    r = httpx.put(base + "/pipelines/pl-secret", headers={**dev, "If-Match": '"1"'}, json=doc)
    assert r.status_code == 200
    for path in ("", "/versions/2", "/diff?from=1&to=2"):
        assert "Sup3rSecret" not in httpx.get(base + "/pipelines/pl-secret" + path, headers=dev).text
    with sqlite3.connect(stack_settings.state_dir / "control.db") as db:
        stored = db.execute("SELECT document FROM pipeline_versions WHERE name='pl-secret' AND version=2").fetchone()[0]
    assert "Sup3rSecret" not in stored and "etl:enc:" in stored  # sealed at rest (tests/test_pipeline_secrets.py)


def test_tenants_see_only_their_own_pipelines(api):
    base, key = api
    a, b = login(base, "pl-dev-a"), login(base, "pl-dev-b")
    assert httpx.post(base + "/pipelines", headers=a, json=document("pl-tenant-a")).status_code == 201
    assert httpx.post(base + "/pipelines", headers=b, json=document("pl-tenant-b")).status_code == 201
    names_b = {p["name"] for p in httpx.get(base + "/pipelines", headers=b).json()}
    assert "pl-tenant-b" in names_b and "pl-tenant-a" not in names_b
    for method, path in (("GET", ""), ("GET", "/versions"), ("GET", "/graph"), ("GET", "/diff"), ("DELETE", "")):
        assert httpx.request(method, base + "/pipelines/pl-tenant-a" + path, headers=b).status_code == 404
    doc = document("pl-tenant-a", description="hijack")
    assert httpx.put(base + "/pipelines/pl-tenant-a?version=1", headers=b, json=doc).status_code == 404
    # Nor can a pipeline be created in, or moved to, another tenant.
    assert httpx.post(base + "/pipelines", headers=b, json=document("pl-into-a", tenant="tenant-a")).status_code == 403
    moved = document("pl-tenant-b", tenant="tenant-a")
    assert httpx.put(base + "/pipelines/pl-tenant-b?version=1", headers=b, json=moved).status_code == 403
    # The superuser sees both.
    names = {p["name"] for p in httpx.get(base + "/pipelines", headers=op(key)).json()}
    assert {"pl-tenant-a", "pl-tenant-b"} <= names


def test_viewers_read_but_cannot_change(api):
    base, _ = api
    viewer = login(base, "pl-viewer-a")
    httpx.post(base + "/pipelines", headers=login(base, "pl-dev-a"), json=document("pl-viewed"))
    assert httpx.get(base + "/pipelines/pl-viewed", headers=viewer).status_code == 200
    assert (
        httpx.put(base + "/pipelines/pl-viewed?version=1", headers=viewer, json=document("pl-viewed")).status_code
        == 403
    )
    assert httpx.delete(base + "/pipelines/pl-viewed", headers=viewer).status_code == 403


def test_graph_has_source_topics_transforms_rules_and_sink(api):
    base, _ = api
    dev = login(base, "pl-dev-a")
    httpx.post(base + "/pipelines", headers=dev, json=document("pl-graph"))
    g = httpx.get(base + "/pipelines/pl-graph/graph", headers=dev).json()
    nodes = {n["id"]: n for n in g["nodes"]}
    assert nodes["source"]["type"] == "source" and nodes["sink"]["kind"] == "clickhouse"
    assert nodes["topic:raw"]["label"] == "huiliu.civil.default.population"
    assert nodes["topic:clean"]["label"].endswith(".clean") and nodes["topic:quarantine"]["label"].endswith(
        ".quarantine"
    )
    edges = {(e["from"], e["to"]) for e in g["edges"]}
    assert {
        ("source", "topic:raw"),
        ("topic:raw", "transform:0"),
        ("transform:0", "rule:name_required"),
        ("rule:name_required", "rule:phone_format"),
        ("rule:phone_format", "topic:clean"),
        ("rule:phone_format", "topic:quarantine"),
        ("topic:clean", "sink"),
    } <= edges


def test_components_list_every_kind_with_a_settings_schema(api):
    base, _ = api
    from connectors import plugins
    from quality_stream import rule_kinds
    from streams.transforms import transform_kinds

    body = httpx.get(base + "/components", headers=login(base, "pl-viewer-a"), timeout=60).json()
    assert body.pop("unavailable") == []  # the test environment has every extra
    kinds = {cat: {c["kind"]: c for c in items} for cat, items in body.items()}
    assert set(kinds["transforms"]) == set(transform_kinds()) and set(kinds["rules"]) == set(rule_kinds())
    assert "timestamp_column" in kinds["sources"]["relational.timestamp"]["schema"]["properties"]
    # Derived from the plugin registry: every source and sink plugin, each usable in a pipeline document.
    # (the API process knows the built-in ones; this test process may hold plugins other tests registered)
    builtin = {name: entry.kind for name, entry in plugins.BUILTIN.items()}
    assert set(kinds["sources"]) == {n for n, k in builtin.items() if k == "source"}
    assert {"streams.socket", "streams.tail", "files", "relational.pg_logical"} <= set(kinds["sources"])
    assert set(kinds["sinks"]) == {n for n, k in builtin.items() if k == "sink" and not n.startswith("runner.")}
    assert {"lean", "faust", "flink"} <= set(kinds["runners"])
    assert all(c["in_pipeline_documents"] for c in kinds["sinks"].values())


def test_pipeline_changes_are_audited(api):
    base, key = api
    entries = httpx.get(base + "/audit", headers=op(key), params={"action": "pipeline.*", "actor": "pl-dev-a"}).json()
    actions = {(e["action"], e["detail"].get("name")) for e in entries}
    assert {
        ("pipeline.create", "pl-crud"),
        ("pipeline.update", "pl-crud"),
        ("pipeline.rollback", "pl-crud"),
        ("pipeline.delete", "pl-crud"),
    } <= actions
    stale = [e for e in entries if e["detail"].get("name") == "pl-race" and e["status"] == 409]
    assert stale and stale[0]["outcome"] == "rejected"
    # A tenant-scoped auditor sees only their tenant's entries.
    make_user(base, key, "pl-auditor-b", tenant="tenant-b", roles=["audit-reader"]) if httpx.post(
        base + "/roles", headers=op(key), json={"name": "audit-reader", "permissions": ["audit:view"]}
    ).status_code == 201 else None
    seen = httpx.get(base + "/audit", headers=login(base, "pl-auditor-b"), params={"limit": 1000}).json()
    assert seen and {e["tenant"] for e in seen} == {"tenant-b"}
