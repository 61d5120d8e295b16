"""Per-component health probes with latency; each probe has a short timeout so /health stays fast.
With log-CDC connectors, `replication_slots` lists the `huiliu_*` slots and the WAL they keep."""

from __future__ import annotations

import time
from collections.abc import Callable

import httpx
import redis
from confluent_kafka.admin import AdminClient
from sqlalchemy import text

from connectors.task_health import failing as task_failing
from deploy.control import engine_for
from deploy.kafka_security import client_config
from deploy.settings import Settings
from sinks.clickhouse import client_from_url


def _timed(probe: Callable[[], str | None]) -> dict:
    start = time.perf_counter()
    try:
        version = probe()
        return {"status": "up", "latency_ms": round((time.perf_counter() - start) * 1000, 1), "version": version}
    except Exception as exc:  # a probe failure is a report, not an error of the endpoint
        return {
            "status": "down",
            "latency_ms": round((time.perf_counter() - start) * 1000, 1),
            "error": f"{type(exc).__name__}: {str(exc)[:200]}",
        }


def probes(settings: Settings) -> dict[str, Callable[[], str | None]]:
    def broker():
        md = AdminClient(client_config(settings.kafka_bootstrap)).list_topics(timeout=3)
        if settings.broker_storage == "memory":  # said plainly: a restart of this broker loses every event
            return f"{len(md.brokers)} broker(s); storage memory: NOT durable"
        return f"{len(md.brokers)} broker(s)"

    def registry():
        httpx.get(f"{settings.schema_registry_url}/subjects", timeout=3).raise_for_status()
        return None

    def control_db():
        with engine_for(settings.resolved_control_db_url).connect() as conn:
            conn.execute(text("SELECT 1"))
        return engine_for(settings.resolved_control_db_url).dialect.name

    def redis_probe():
        client = redis.Redis.from_url(settings.redis_url, socket_timeout=2, socket_connect_timeout=2)
        return client.info("server")["redis_version"]

    def clickhouse():
        client = client_from_url(settings.clickhouse_url)
        try:
            return client.execute("SELECT version()")[0][0]
        finally:
            client.disconnect()

    def hdfs():
        response = httpx.get(f"{settings.hdfs_url}/webhdfs/v1/?op=GETFILESTATUS", timeout=3)
        response.raise_for_status()
        return None

    def workers():
        from connectors.leases import Leases  # the workers' own heartbeats in Redis

        live = Leases.for_settings(settings).live_workers()
        if not live:
            raise RuntimeError("no live connector worker (start one with `huiliu worker`)")
        return f"{len(live)} live: {', '.join(live[:10])}"

    found = {
        "broker": broker,
        "schema_registry": registry,
        "control_db": control_db,
        "redis": redis_probe,
        "clickhouse": clickhouse,
        "workers": workers,
    }
    if settings.hdfs_url:  # HDFS is optional on a single machine
        found["hdfs"] = hdfs
    return found


def replication_slots(settings: Settings, principal=None) -> dict | None:
    """`huiliu_*` replication slots on the PostgreSQL servers of the log-CDC connectors, with the WAL
    each keeps (connectors.decommission). Status `inactive` when a slot no running connector reads
    holds WAL (an orphan, or a paused/stopped connector's): the server keeps its WAL until its disk
    fills. A tenant's caller sees its own connectors' slots by name, the others only counted."""
    from connectors.decommission import replication_slots as find
    from connectors.store import ConnectorStore

    store = ConnectorStore.for_settings(settings)
    records = {r.name: r for r in store.all()}
    if not any(r.plugin == "relational.pg_logical" for r in records.values()):
        return None
    start = time.perf_counter()
    try:
        slots = find(store, settings)
    except Exception as exc:
        return {"status": "down", "error": f"{type(exc).__name__}: {str(exc)[:200]}"}

    def shown(slot: dict) -> bool:
        if principal is None or principal.all_tenants:
            return True
        owner = records.get(slot.get("connector") or "")
        return owner is not None and principal.sees_tenant(owner.tenant)

    listed = [s for s in slots if shown(s)]
    hidden = [s for s in slots if not shown(s) and "error" not in s]
    inactive = [s for s in slots if s.get("inactive")]
    report = {
        "status": "inactive" if inactive else "up",
        "latency_ms": round((time.perf_counter() - start) * 1000, 1),
        "version": f"{len([s for s in slots if 'slot' in s])} slot(s), {len(inactive)} inactive, "
        f"{sum(s['retained_bytes'] for s in inactive)} bytes of WAL retained by inactive slots",
        "slots": listed,
    }
    if hidden:
        report["other_tenants"] = {
            "slots": len(hidden),
            "inactive": sum(1 for s in hidden if s["inactive"]),
            "inactive_retained_bytes": sum(s["retained_bytes"] for s in hidden if s["inactive"]),
        }
    return report


def connector_tasks(settings: Settings, principal=None) -> dict | None:
    """Connector tasks that keep failing: FAILED, or RUNNING while retrying (their status detail
    `retrying in Ns (attempt k...)`), with the last error, the attempt and the next retry. Status
    `failing` when there is one (overall `degraded`); a tenant's caller sees its own connectors'
    tasks by name, the others only counted. None without connectors."""
    from sqlalchemy import select

    from connectors.store import connectors_table, task_status_table

    engine = engine_for(settings.resolved_control_db_url)
    start = time.perf_counter()
    with engine.connect() as conn:
        owners = dict(conn.execute(select(connectors_table.c.name, connectors_table.c.tenant)).all())
        rows = conn.execute(select(task_status_table)).all()
    if not owners:
        return None
    failing, hidden = [], 0
    for r in rows:
        reading = task_failing(r.state, r.detail)
        if r.connector not in owners or reading is None:
            continue
        if principal is not None and not principal.all_tenants and not principal.sees_tenant(owners[r.connector]):
            hidden += 1
            continue
        failing.append(
            {
                "connector": r.connector,
                "task": r.task,
                **reading,
                "reported_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(r.updated_at)),
            }
        )
    report = {
        "status": "failing" if failing or hidden else "up",
        "latency_ms": round((time.perf_counter() - start) * 1000, 1),
        "version": f"{len(rows)} task(s), {len(failing) + hidden} failing",
        "failing": failing,
    }
    if hidden:
        report["other_tenants"] = {"failing": hidden}
    return report


def health_report(settings: Settings, principal=None) -> dict:
    components = {name: _timed(probe) for name, probe in probes(settings).items()}
    try:
        slots = replication_slots(settings, principal)
    except Exception as exc:  # the control DB away: its own probe says so
        slots = {"status": "down", "error": f"{type(exc).__name__}: {str(exc)[:200]}"}
    if slots is not None:
        components["replication_slots"] = slots
    try:
        tasks = connector_tasks(settings, principal)
    except Exception as exc:  # the control DB away: its own probe says so
        tasks = {"status": "down", "error": f"{type(exc).__name__}: {str(exc)[:200]}"}
    if tasks is not None:
        components["connector_tasks"] = tasks
    overall = "ok" if all(c["status"] == "up" for c in components.values()) else "degraded"
    return {"status": overall, "components": components}
