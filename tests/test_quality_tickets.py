"""Quality tickets through the real API process, a real worker running the pipeline's runner,
PostgreSQL, the broker and ClickHouse (issue 16): a ticket opens when the rule's failures reach the
threshold (not below), one per dataset and rule (later failures count into it), assigned to the
dataset's owner from the catalogue, the downstream owner (lineage) told in the message centre; the
workflow with its illegal moves; verified when new data passes the rule, closed, reopened when the
failures come back; opened by hand from a quarantined record and escalated once when overdue;
metrics per owner and department; the workbench; permissions (viewer refused, samples masked) and
another tenant's ticket answering 404."""

from __future__ import annotations

import os
import time
import uuid

import httpx
import pytest
from sqlalchemy import create_engine, text

from schemas.catalog.urns import topic_urn
from schemas.naming import topic_name
from tests.connect_cluster import (
    api_and_worker,
    own_control_db,  # noqa: F401 - a fixture: stack_settings with its own control DB
    wait_until,
)

RUN = uuid.uuid4().hex[:6]
TENANT = f"qt{RUN}"
NAME = f"qtick-{RUN}"
TABLE = f"qtick_{RUN}"
SYSTEM = f"qt{RUN}"
PASSWORD = "Quartz-Lumen-7741-Tarn"
DOWNSTREAM = f"hl:dataset:clickhouse://report{RUN}:9000/bi.daily_{RUN}"


@pytest.fixture(scope="module")
def cluster(stack_settings, tmp_path_factory, pg_url):
    engine = create_engine(pg_url)
    with engine.begin() as conn:
        conn.execute(text(f"CREATE TABLE {TABLE} (id integer PRIMARY KEY, code text, name text, updated_at timestamp)"))
    logs = tmp_path_factory.mktemp("qtick-logs")
    os.environ["HUILIU_QUALITY_TICKETS_TICK"] = "1"  # the API's monitor looks every second
    try:
        with api_and_worker(stack_settings, logs, f"worker-qtick-{RUN}") as client:
            yield client, engine, logs
            client.post(f"/pipelines/{NAME}/undeploy")
    finally:
        os.environ.pop("HUILIU_QUALITY_TICKETS_TICK", None)
        with engine.begin() as conn:
            conn.execute(text(f"DROP TABLE IF EXISTS {TABLE}"))
        engine.dispose()


def _insert(engine, rows) -> None:
    with engine.begin() as conn:
        for i, code, name in rows:
            conn.execute(
                text(f"INSERT INTO {TABLE} VALUES (:i, :c, :n, clock_timestamp())"), {"i": i, "c": code, "n": name}
            )


def _user(api: httpx.Client, name: str, roles: list[str], tenant: str = TENANT) -> httpx.Client:
    r = api.post("/users", json={"username": name, "password": PASSWORD, "tenant": tenant, "roles": roles})
    assert r.status_code == 201, r.text
    token = api.post("/auth/token", data={"username": name, "password": PASSWORD}).json()["access_token"]
    return httpx.Client(base_url=str(api.base_url), headers={"Authorization": f"Bearer {token}"}, timeout=60)


def _tickets(who: httpx.Client, **params) -> dict:
    r = who.get("/quality/tickets", params={"pipeline": NAME, **params})
    assert r.status_code == 200, r.text
    return r.json()


def test_tickets_from_threshold_to_reopen(cluster, stack_settings, pg_url):
    api, engine, logs = cluster
    dev = _user(api, f"{TENANT}-dev", ["developer"])  # quality:manage, data:view, metadata:manage
    viewer = _user(api, f"{TENANT}-view", ["viewer"])
    other = _user(api, f"x{RUN}-admin", ["admin"], tenant=f"x{RUN}")
    source = {"url": pg_url, "system": SYSTEM, "db_schema": "public", "table": TABLE, "timestamp_column": "updated_at"}
    document = {
        "name": NAME,
        "tenant": TENANT,
        "source": {"kind": "relational.timestamp", "config": source},
        "rules": [
            {"id": "code_required", "kind": "required", "fields": ["code"]},
            {"id": "name_short", "kind": "length", "fields": ["name"], "max": 8, "dimension": "accuracy"},
        ],
        "sink": {"kind": "clickhouse", "config": {"table": f"qtick_ch_{RUN}"}},
    }
    assert api.post("/pipelines", json=document).status_code == 201

    # the catalogue: the raw topic owned by dev (户籍科), a report downstream of it owned by the viewer
    raw_urn = topic_urn(
        stack_settings.kafka_bootstrap, topic_name(stack_settings.topic_prefix, SYSTEM, "public", TABLE)
    )
    r = dev.post("/lineage/edges", json={"job": f"report{RUN}", "edges": [{"source": raw_urn, "target": DOWNSTREAM}]})
    assert r.status_code == 200, r.text
    r = dev.patch(f"/metadata/datasets/{raw_urn}", json={"owner": f"{TENANT}-dev", "department": "户籍科"})
    assert r.status_code == 200, r.text
    assert dev.patch(f"/metadata/datasets/{DOWNSTREAM}", json={"owner": f"{TENANT}-view"}).status_code == 200

    # thresholds: 2 failures within an hour; bad input refused naming the field
    bad = dev.put("/quality/tickets/thresholds", json={"pipeline": NAME, "min_failed": 0})
    assert bad.status_code == 422 and "min_failed" in bad.text
    assert viewer.put("/quality/tickets/thresholds", json={"pipeline": NAME, "min_failed": 2}).status_code == 403
    assert other.put("/quality/tickets/thresholds", json={"pipeline": NAME, "min_failed": 2}).status_code == 404
    r = dev.put("/quality/tickets/thresholds", json={"pipeline": NAME, "min_failed": 2, "window_seconds": 3600})
    assert r.status_code == 200 and r.json()["tenant"] == TENANT, r.text

    # one failure: below the threshold, no ticket
    _insert(engine, [(1, "a", "ok"), (2, None, "ok"), (3, "c", "ok")])
    assert api.post(f"/pipelines/{NAME}/deploy").status_code == 200
    quarantined = lambda n: dev.get("/quality/quarantine", params={"pipeline": NAME}).json()["total"] >= n or None  # noqa: E731
    try:
        wait_until(lambda: quarantined(1), 150, interval=1.0, message="the first failure quarantined")
    except AssertionError:
        raise AssertionError((logs / "worker.log").read_text()[-4000:]) from None
    time.sleep(4)  # several monitor ticks
    assert _tickets(dev)["total"] == 0

    # the second failure reaches it: one ticket, assigned to the owner, the downstream owner told
    _insert(engine, [(4, None, "ok")])
    page = wait_until(lambda: _tickets(dev) if _tickets(dev)["total"] else None, 90, interval=1.0, message="ticket")
    t = page["items"][0]
    assert (t["rule"], t["dimension"], t["state"], t["assignee"], t["department"]) == (
        "code_required",
        "completeness",
        "assigned",
        f"{TENANT}-dev",
        "户籍科",
    )
    assert t["dataset"] == raw_urn and t["failed"] == 2 and t["origin"] == "auto" and t["masked"] is False
    assert t["samples"] and t["samples"][0]["event"]["after"]["code"] is None
    shown = viewer.get(f"/quality/tickets/{t['id']}").json()
    assert shown["masked"] is True and shown["actions"] == []
    assert shown["samples"][0]["event"]["after"]["name"] == "****"
    messages = api.get("/messages", params={"limit": 200}).json()
    told = [m for m in (messages if isinstance(messages, list) else messages["items"]) if f"#{t['id']}" in m["subject"]]
    assert any(f"{TENANT}-view" in m["subject"] for m in told), told

    # more failures count into the same ticket
    _insert(engine, [(5, None, "ok")])
    wait_until(lambda: _tickets(dev)["items"][0]["failed"] == 3 or None, 90, interval=1.0, message="counted in")
    assert _tickets(dev)["total"] == 1

    # the workflow: permissions, illegal moves, a comment, resolution
    tid, move = t["id"], f"/quality/tickets/{t['id']}/transitions"
    assert viewer.post(move, json={"action": "start"}).status_code == 403
    assert other.post(move, json={"action": "start"}).status_code == 404
    assert other.get(f"/quality/tickets/{tid}").status_code == 404
    assert _tickets(other)["total"] == 0
    r = dev.post(move, json={"action": "close"})
    assert r.status_code == 409 and "assigned" in r.json()["detail"]["message"] and r.json()["detail"]["message_zh"]
    assert dev.post(move, json={"action": "fly"}).status_code == 422
    assert (
        dev.post(f"/quality/tickets/{tid}/comments", json={"text": "源系统录入漏填 / left empty at entry"}).status_code
        == 201
    )
    assert dev.post(move, json={"action": "start"}).json()["state"] == "in_progress"
    r = dev.post(move, json={"action": "resolve", "resolution": "fixed_at_source"})
    assert r.status_code == 422 and r.json()["detail"]["field"] == "reason"
    r = dev.post(move, json={"action": "resolve", "resolution": "fixed_at_source", "reason": "源系统已补录"})
    assert r.status_code == 200 and r.json()["state"] == "resolved", r.text
    assert dev.post(move, json={"action": "close"}).status_code == 409  # not verified yet

    # new data passes the rule: verified automatically, then closed
    _insert(engine, [(6, "f", "ok")])
    wait_until(lambda: dev.get(f"/quality/tickets/{tid}").json()["state"] == "verified" or None, 90, interval=1.0)
    assert dev.post(move, json={"action": "close"}).json()["state"] == "closed"

    # the failures come back: the same ticket reopens
    _insert(engine, [(7, None, "ok")])
    wait_until(lambda: dev.get(f"/quality/tickets/{tid}").json()["state"] == "reopened" or None, 90, interval=1.0)
    full = dev.get(f"/quality/tickets/{tid}").json()
    moves = [(e["from"], e["to"]) for e in full["history"] if e["kind"] == "transition"]
    assert moves == [
        ("open", "assigned"),
        ("assigned", "in_progress"),
        ("in_progress", "resolved"),
        ("resolved", "verified"),
        ("verified", "closed"),
        ("closed", "reopened"),
    ]
    assert [e["body"] for e in full["history"] if e["kind"] == "comment"] == ["源系统录入漏填 / left empty at entry"]
    assert _tickets(dev)["total"] == 1

    # by hand from a quarantined record of another rule, due at once: escalated once
    _insert(engine, [(8, "h", "a name far too long")])
    wait_until(lambda: quarantined(5), 90, interval=1.0, message="the long name quarantined")
    rec = dev.get("/quality/quarantine", params={"pipeline": NAME, "rule": "name_short"}).json()["items"][0]
    position = {"partition": rec["partition"], "offset": rec["offset"]}
    body = {"pipeline": NAME, "records": [position], "due_in_hours": 0.0003, "comment": "请核实 / please check"}
    assert viewer.post("/quality/tickets", json=body).status_code == 403
    assert other.post("/quality/tickets", json=body).status_code == 404
    assert dev.post("/quality/tickets", json={**body, "rule": "code_required"}).status_code == 422
    assert (
        dev.post("/quality/tickets", json={**body, "records": [{"partition": 0, "offset": 10**6}]}).status_code == 404
    )
    r = dev.post("/quality/tickets", json=body)
    assert r.status_code == 201 and r.json()["created"] is True, r.text
    manual = r.json()
    assert (manual["rule"], manual["dimension"], manual["origin"]) == ("name_short", "accuracy", "manual")
    wait_until(lambda: dev.get(f"/quality/tickets/{manual['id']}").json()["escalated_at"] or None, 60, interval=1.0)
    time.sleep(3)
    overdue = [m for m in api.get("/messages", params={"limit": 200}).json() if "overdue" in m["subject"]]
    assert len([m for m in overdue if f"#{manual['id']}" in m["subject"]]) == 1

    # workbench and metrics
    bench = dev.get("/workbench").json()
    assert {x["id"] for x in bench["tickets_assigned"]} == {tid, manual["id"]}
    assert manual["id"] in {x["id"] for x in bench["tickets_overdue"]}
    assert bench["counts"]["tickets_assigned"] == 2
    metrics = dev.get("/quality/tickets/metrics").json()
    mine = next(o for o in metrics["by_owner"] if o["owner"] == f"{TENANT}-dev")
    assert mine["tickets"] == 2 and mine["resolved"] == 1 and mine["responded"] >= 1
    assert mine["time_to_resolve_s"]["max"] > 0
    assert next(d for d in metrics["by_department"] if d["department"] == "户籍科")["tickets"] == 2
    assert other.get("/quality/tickets/metrics").json()["total"]["tickets"] == 0
    audit = api.get("/audit", params={"limit": 500}).json()
    actions = {e["action"] for e in (audit if isinstance(audit, list) else audit["items"])}
    assert {"quality.ticket.resolve", "quality.ticket.comment", "quality.ticket.open"} <= actions
