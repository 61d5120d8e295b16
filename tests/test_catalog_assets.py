"""Asset statistics and the data map through HTTP (issue 15): totals per system, department and
classification (rows from the server's estimates, consumers from lineage, events read and
quarantined from a runner's stage counters), the map of systems and
the flows between them, drilled down to one system's datasets; a tenant sees only its own; a bad
system URN answers 422."""

from __future__ import annotations

import uuid
from urllib.parse import quote

import httpx
import pytest
from sqlalchemy import create_engine, text

from deploy.control import StageCounters
from tests.api_process import api_client, wait_for  # noqa: F401  (fixture)

RUN = uuid.uuid4().hex[:6]
SCHEMA = f"ast{RUN}"
PASSWORD = "Quartz-Lumen-7741-Tarn"
TOPIC = f"hl:dataset:kafka://broker{RUN}:9092/huiliu.civil.{SCHEMA}.households"
CH = f"hl:dataset:clickhouse://ch{RUN}:9000/dw.households"


def _client(api, tenant: str) -> httpx.Client:
    user = f"{tenant}-dev"
    r = api.post("/users", json={"username": user, "password": PASSWORD, "tenant": tenant, "roles": ["developer"]})
    assert r.status_code == 201, r.text
    token = api.post("/auth/token", data={"username": user, "password": PASSWORD}).json()["access_token"]
    return httpx.Client(base_url=str(api.base_url), headers={"Authorization": f"Bearer {token}"}, timeout=60)


@pytest.fixture(scope="module")
def world(api, pg_url, stack_settings):
    engine = create_engine(pg_url)
    with engine.begin() as c:
        c.execute(text(f"CREATE SCHEMA {SCHEMA}"))
        c.execute(text(f"CREATE TABLE {SCHEMA}.households (id bigint PRIMARY KEY, head text, size int)"))
        c.execute(text(f"INSERT INTO {SCHEMA}.households SELECT g, 'h', 3 FROM generate_series(1, 300) g"))
        c.execute(text(f"ANALYZE {SCHEMA}.households"))
    engine.dispose()
    tenant, other = f"asta{RUN}", f"astb{RUN}"
    a, b = _client(api, tenant), _client(api, other)
    config = {
        "connector.class": "relational.snapshot",
        "url": pg_url,
        "system": f"civil{RUN}",
        "tables": {"schemas": [SCHEMA], "include": [f"{SCHEMA}.*"]},
    }
    name = f"ast-{RUN}"
    assert a.post("/connectors", json={"name": name, "config": config, "initial_state": "STOPPED"}).status_code == 201
    runner = {"connector.class": "runner.lean", "topics": [f"huiliu.q{RUN}.public.t"], "pipeline": f"astp{RUN}"}
    assert (
        a.post("/connectors", json={"name": f"{name}-run", "config": runner, "initial_state": "STOPPED"}).status_code
        == 201
    )
    StageCounters(stack_settings.resolved_control_db_url, f"astp{RUN}").add("runner", {"read": 200, "quarantined": 10})
    job = a.post("/metadata/harvest", json={"connectors": [name, f"{name}-run"]}).json()["job_id"]
    wait_for(lambda: api.get(f"/jobs/{job}").json()["state"] == "succeeded", 120)
    table = next(d for d in a.get("/metadata/datasets").json()["items"] if d["name"] == f"{SCHEMA}.households")
    edges = [
        {"source": table["urn"], "target": TOPIC},
        {"source": table["urn"], "target": TOPIC, "source_field": "head", "target_field": "head"},
    ]
    assert a.post("/lineage/edges", json={"job": "capture", "edges": edges}).status_code == 200
    assert a.post("/lineage/edges", json={"job": "load", "edges": [{"source": TOPIC, "target": CH}]}).status_code == 200
    patch = {"department": "民政局", "classification": "sensitive"}
    assert a.patch(f"/metadata/datasets/{quote(table['urn'], safe='')}", json=patch).status_code == 200
    yield {"a": a, "b": b, "table": table, "bootstrap": stack_settings.kafka_bootstrap}
    a.close()
    b.close()


def test_the_summary_totals_per_system_department_and_classification(world):
    table = world["table"]
    s = world["a"].get("/assets/summary").json()
    systems = {g["system"]: g for g in s["by_system"]}  # the table's, the broker's (harvested topics), 2 external
    total = s["totals"]["datasets"]
    assert total == sum(g["datasets"] for g in systems.values()) >= 4 and s["totals"]["rows"] == 300
    assert s["totals"]["fields"] == sum(g["fields"] for g in systems.values()) >= 3 + 1
    pg = systems[table["system"]]
    assert (pg["datasets"], pg["fields"], pg["rows"], pg["consumers"], pg["name"]) == (1, 3, 300, 2, f"civil{RUN}")
    assert pg["last_change"] and pg["harvested"]  # consumers: the connector's job and the reported one
    broker = systems[f"hl:system:kafka://{world['bootstrap']}"]  # the runner's counts, on its raw topic
    assert (broker["events_read"], broker["quarantined"], broker["quarantine_ratio"]) == (200, 10, 0.05)
    assert (s["totals"]["events_read"], s["totals"]["quarantine_ratio"]) == (200, 0.05)
    assert {g["department"]: g["datasets"] for g in s["by_department"]} == {"民政局": 1, "(none)": total - 1}
    assert {g["classification"]: g["datasets"] for g in s["by_classification"]} == {"sensitive": 1, "(none)": total - 1}
    assert world["b"].get("/assets/summary").json()["totals"]["datasets"] == 0  # tenants see their own


def test_the_data_map_aggregates_flows_at_system_level_and_drills_down(world):
    table = world["table"]
    kafka, ch = f"hl:system:kafka://broker{RUN}:9092", f"hl:system:clickhouse://ch{RUN}:9000"
    m = world["a"].get("/map").json()
    assert m["level"] == "system"
    nodes = {n["id"]: n["datasets"] for n in m["nodes"]}
    assert {k: nodes.get(k) for k in (table["system"], kafka, ch)} == {table["system"]: 1, kafka: 1, ch: 1}
    flows = {(e["source"], e["target"]): (e["flows"], e["jobs"]) for e in m["edges"]}
    assert flows[(table["system"], kafka)] == (1, ["hl:job:huiliu/api/capture"])
    assert flows[(kafka, ch)] == (1, ["hl:job:huiliu/api/load"])
    harvested = [v for (src, _), v in flows.items() if src == table["system"] and v[1] == [f"hl:job:huiliu/ast-{RUN}"]]
    assert harvested == [(1, [f"hl:job:huiliu/ast-{RUN}"])]  # the connector's own: table -> its raw topic
    drill = world["a"].get("/map", params={"system": kafka}).json()
    assert drill["level"] == "dataset" and {n["id"] for n in drill["nodes"]} == {table["urn"], TOPIC, CH}
    assert {(e["source"], e["target"]) for e in drill["edges"]} == {(table["urn"], TOPIC), (TOPIC, CH)}
    assert world["b"].get("/map").json()["nodes"] == []
    for bad in ("kafka://x", "hl:dataset:kafka://x:1/t"):
        r = world["a"].get("/map", params={"system": bad})
        assert r.status_code == 422 and "urn" in r.text


def test_events_per_day_come_from_the_quality_metrics_daily_rollup(world, stack_settings):
    """The runner's quality metrics (rows per window and rule, rolled up per day in ClickHouse) give
    each raw topic its events per day: a day's events are what one rule judged (every rule judges
    every event), a second pipeline on the same topic is not added; the mean is over days with events."""
    from datetime import UTC, datetime, timedelta

    from deploy.clickhouse import client_from_url
    from quality_stream.metrics.schema import RAW, ensure_tables

    topic = f"huiliu.q{RUN}.public.t"
    now = datetime.now(UTC).replace(tzinfo=None, hour=12, minute=0, second=0, microsecond=0)
    rows = []
    for days_ago, windows in ((2, (60, 40)), (1, (300,))):
        for i, n in enumerate(windows):
            at = now - timedelta(days=days_ago, minutes=i)
            for rule in ("head_required", "size_range"):  # both rules judge every event
                rows.append((at, f"asta{RUN}", f"astp{RUN}", f"q{RUN}", topic, rule, "validity", "m", n, 1))
            rows.append((at, f"asta{RUN}", f"other{RUN}", f"q{RUN}", topic, "x", "validity", "m", n // 2, 0))
    ch = client_from_url(stack_settings.clickhouse_url)
    try:
        ensure_tables(ch)
        ch.execute(
            f"INSERT INTO {RAW} (window_start, scope, pipeline, system, dataset, rule, dimension, message, "
            "evaluated, failed) VALUES",
            rows,
        )
    finally:
        ch.disconnect()
    urn = f"hl:dataset:kafka://{world['bootstrap']}/{topic}"
    r = world["a"].get(f"/metadata/datasets/{quote(urn, safe='')}")
    assert r.status_code == 200, r.text
    stats = r.json()["stats"]
    days = [(now - timedelta(days=d)).date().isoformat() for d in (2, 1)]
    assert stats["events_daily"] == [{"day": days[0], "events": 100}, {"day": days[1], "events": 300}]
    assert stats["events_per_day"] == 200.0
    assert (stats["events_read"], stats["quarantined"], stats["quarantine_ratio"]) == (200, 10, 0.05)
    assert stats["consumers"] == [f"hl:job:huiliu/ast-{RUN}-run"]
    summary = world["a"].get("/assets/summary").json()
    broker = next(g for g in summary["by_system"] if g["system"] == f"hl:system:kafka://{world['bootstrap']}")
    assert broker["events_per_day"] == summary["totals"]["events_per_day"] == 200.0
    assert world["b"].get("/assets/summary").json()["totals"]["events_per_day"] == 0.0  # tenants see their own
