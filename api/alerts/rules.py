"""Alert rule kinds: each evaluator looks at the platform and returns the alerts that hold now.

task_failed      params {"schedule": optional id/name, "connector": optional name}: schedule runs
                 and jobs that failed since the previous evaluation (subject per schedule / job
                 type), and connector tasks FAILED or failing with retries (a sink that cannot
                 write: subject per connector, body its state and last error; not with
                 `schedule`); a tenant's rule: its tenant's schedules and connectors only (jobs
                 have no tenant)
quarantine_rate  params {"pipeline", "threshold_pct", "min_events": 1}: runner quarantined /
                 (valid + quarantined) from StageCounters (cumulative counts), above threshold
consumer_lag     params {"threshold", "group": optional}: total lag of a group above threshold
                 (a tenant's rule without group: the groups of its connectors and pipelines)
sink_down        params {"pipeline" or "group", "for_seconds"}: the sink's consumer group has
                 no live member for at least for_seconds (the API cannot see a sink's in-process
                 SinkState, so group membership is the signal)
lost_data        params {}: acknowledged events the broker no longer has (a log that ends below a
                 group's committed offset, a topic that vanished under commits or under a source's
                 stored offsets); names topic, partition, offsets and the connectors that wrote it,
                 which can re-read the tables: POST /connectors/{name}/snapshot (api.lag.lost_data)
replication_slot_inactive  params {"threshold_bytes": 0}: a `huiliu_*` replication slot that no
                 running connector reads (left behind, or its connector paused/stopped) keeps more
                 WAL than threshold_bytes on its PostgreSQL server (connectors.decommission); a
                 tenant's rule: its connectors' slots only (slots of no connector: rules without tenant)
service_error_ratio  params {"service", "threshold_pct", "window_minutes": 15, "min_calls": 20}: the
                 share of a data service's calls answered 5xx over the last window, from the
                 ClickHouse call log (streams/dataservices/calllog.py), above threshold_pct; a
                 tenant's rule: its own service; the operator's: params.scope ("" by default)
service_latency  params {"service", "threshold_ms", "quantile": 0.99 (0.5 / 0.95 / 0.99),
                 "window_minutes": 15, "min_calls": 20}: the call latency quantile over the last
                 window above threshold_ms (same log, same scoping)
schema_change    params {"connector": optional name}: schema changes capture tasks met since the
                 previous evaluation (connectors.schema_changes): followed ones (warning) and
                 incompatible ones that stopped a capture (error, with the accept route); a tenant's
                 rule: its connectors' changes only
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass

from deploy.control import StageCounters
from deploy.settings import Settings


@dataclass
class Alert:
    subject: str
    body: str
    level: str = "error"


OVERLAP = 120.0  # seconds task_failed looks back beyond its previous evaluation
Evaluator = Callable[[dict, Settings, dict, float], list[Alert]]
KINDS: dict[str, Evaluator] = {}
REQUIRED = {
    "quarantine_rate": ("pipeline", "threshold_pct"),
    "consumer_lag": ("threshold",),
    "sink_down": (),
    "task_failed": (),
    "replication_slot_inactive": (),
    "lost_data": (),
    "schema_change": (),
    "service_error_ratio": ("service", "threshold_pct"),
    "service_latency": ("service", "threshold_ms"),
}


def kind(name: str):
    def register(fn: Evaluator) -> Evaluator:
        KINDS[name] = fn
        return fn

    return register


def validate(kind_name: str, params: dict) -> None:
    if kind_name not in KINDS:
        raise ValueError(f"unknown rule kind {kind_name!r}; known: {sorted(KINDS)}")
    missing = [p for p in REQUIRED.get(kind_name, ()) if p not in params]
    if kind_name == "sink_down" and not ({"pipeline", "group"} & params.keys()):
        missing.append("pipeline or group")
    if missing:
        raise ValueError(f"{kind_name} needs params {missing}")
    if kind_name == "service_latency" and params.get("quantile", 0.99) not in (0.5, 0.95, 0.99):
        raise ValueError("service_latency: quantile is 0.5, 0.95 or 0.99")
    if kind_name in ("service_error_ratio", "service_latency"):
        for name in ("threshold_pct", "threshold_ms", "window_minutes", "min_calls"):
            value = params.get(name, 1)
            if isinstance(value, bool) or not isinstance(value, int | float) or value < 0:
                raise ValueError(f"{kind_name}: {name} must be a number, 0 or more")
    if kind_name == "replication_slot_inactive":
        value = params.get("threshold_bytes", 0)
        if isinstance(value, bool) or not isinstance(value, int) or value < 0:
            raise ValueError("replication_slot_inactive: threshold_bytes must be a whole number of bytes, 0 or more")


@kind("task_failed")
def task_failed(rule: dict, settings: Settings, memory: dict, since: float) -> list[Alert]:
    from api.jobs.store import JobStore, epoch
    from api.scheduling.store import ScheduleStore

    url, only = settings.resolved_control_db_url, rule["params"].get("schedule")
    tenant = rule.get("tenant")  # a tenant's rule sees its tenant's schedules only
    store = ScheduleStore(url)
    alerts, run_jobs = [], set()
    # A run may commit a finish time slightly older than the previous evaluation: look back further
    # and remember what was already reported, so no failure slips between two evaluations.
    seen: set = memory.setdefault("seen", set())
    since -= OVERLAP
    for run in store.runs(status="failed", since=since, limit=200):
        run_jobs.add(run["job_id"])
        if run["id"] in seen:
            continue
        seen.add(run["id"])
        s = store.get(run["schedule_id"]) or {"name": run["schedule_id"], "id": run["schedule_id"], "tenant": None}
        if tenant is not None and s["tenant"] != tenant:
            continue
        if only and only not in (s["name"], s["id"]):
            continue
        alerts.append(
            Alert(
                f"task failed: schedule {s['name']}",
                f"Run {run['id']} of schedule {s['name']} ({run['trigger']}) failed at "
                f"{run['finished_at']}:\n{run['error']}",
            )
        )
    # Jobs not started by a schedule (imports, snapshots...) count too; jobs have no tenant, so
    # only for rules without one (the operator's).
    if not only and tenant is None:
        for job in JobStore(url).list(state="failed", limit=200):
            if (
                job["id"] in run_jobs
                or job["id"] in seen
                or not job["finished_at"]
                or epoch(job["finished_at"]) < since
            ):
                continue
            seen.add(job["id"])
            alerts.append(
                Alert(
                    f"task failed: job {job['type']}",
                    f"Job {job['id']} ({job['type']}, by {job['operator']}) failed:\n{job['error']}",
                )
            )
    if not only:
        alerts += _failing_connectors(settings, rule, seen)
    if len(seen) > 5000:  # only the overlap window matters; forget the rest
        seen.clear()
    return alerts


def _failing_connectors(settings: Settings, rule: dict, seen: set) -> list[Alert]:
    """Connector tasks (a sink that cannot write, a source that cannot read) that are FAILED or
    keep failing (connectors.task_health), once per task and error; `params.connector` narrows."""
    from connectors.store import ConnectorStore
    from connectors.task_health import failing

    tenant, only = rule.get("tenant"), rule["params"].get("connector")
    store = ConnectorStore.for_settings(settings)
    alerts = []
    try:
        for record in store.all({tenant} if tenant is not None else None):
            if only and record.name != only:
                continue
            for task, status in sorted(store.task_statuses(record.name).items()):
                reading = failing(status["state"], status["detail"])
                key = ("connector", record.name, task, reading and reading["state"], reading and reading["last_error"])
                if reading is None or key in seen:
                    continue
                seen.add(key)
                retry = (
                    f" (attempt {reading['attempt']}, next retry in {reading['next_retry_s']:g}s)"
                    if reading["attempt"]
                    else ""
                )
                alerts.append(
                    Alert(
                        f"task failed: {record.kind} connector {record.name}",
                        f"The {record.kind} connector {record.name} (task {task}) is {reading['state']}{retry}:\n"
                        f"{reading['last_error']}",
                    )
                )
    finally:
        store.engine.dispose()
    return alerts


@kind("quarantine_rate")
def quarantine_rate(rule: dict, settings: Settings, memory: dict, since: float) -> list[Alert]:
    p = rule["params"]
    runner = StageCounters(settings.resolved_control_db_url, p["pipeline"]).read().get("runner", {})
    valid, quarantined = runner.get("valid", 0), runner.get("quarantined", 0)
    total = valid + quarantined
    if total < int(p.get("min_events", 1)) or total == 0:
        return []
    rate = 100.0 * quarantined / total
    if rate <= float(p["threshold_pct"]):
        return []
    per_rule = {k.split(".", 1)[1]: v for k, v in runner.items() if k.startswith("quarantined.")}
    return [
        Alert(
            f"quarantine rate above {p['threshold_pct']}%: pipeline {p['pipeline']}",
            f"{quarantined} of {total} events ({rate:.1f}%) were quarantined.\nBy rule: {per_rule}",
            level="warning",
        )
    ]


@kind("consumer_lag")
def consumer_lag(rule: dict, settings: Settings, memory: dict, since: float) -> list[Alert]:
    from api.lag import consumer_lag as lag
    from api.scoping import groups_of

    p = rule["params"]
    if p.get("group"):
        groups = [p["group"]]
    elif rule.get("tenant") is not None:  # a tenant's rule: its connectors' and pipelines' groups only
        groups = groups_of(settings, rule["tenant"])
        if not groups:
            return []
    else:
        groups = None
    report = lag(settings, groups)
    totals: dict[str, int] = {}
    for row in report["partitions"]:
        totals[row["group"]] = totals.get(row["group"], 0) + row["lag"]
    return [
        Alert(f"consumer lag above {p['threshold']}: group {g}", f"Group {g} is {n} events behind.", level="warning")
        for g, n in totals.items()
        if n > int(p["threshold"])
    ]


@kind("sink_down")
def sink_down(rule: dict, settings: Settings, memory: dict, since: float) -> list[Alert]:
    from confluent_kafka.admin import AdminClient

    from deploy.kafka_security import client_config

    p = rule["params"]
    group = p.get("group") or f"huiliu-sink-{p['pipeline']}"
    try:
        admin = AdminClient(client_config(settings.kafka_bootstrap))  # must outlive the future
        desc = admin.describe_consumer_groups([group], request_timeout=5)[group].result(timeout=10)
        down, why = not desc.members, f"group {group} has no member (state {desc.state})"
    except Exception as exc:
        down, why = True, f"group {group} cannot be described: {exc}"
    now = time.time()
    if not down:
        memory.pop("down_since", None)
        return []
    first = memory.setdefault("down_since", now)
    if now - first < float(p.get("for_seconds", 60)):
        return []
    return [Alert(f"sink down: {p.get('pipeline') or group}", f"{why}, for {now - first:.0f}s.")]


@kind("replication_slot_inactive")
def replication_slot_inactive(rule: dict, settings: Settings, memory: dict, since: float) -> list[Alert]:
    from connectors.decommission import replication_slots
    from connectors.store import ConnectorStore

    threshold = int(rule["params"].get("threshold_bytes", 0))
    tenant = rule.get("tenant")
    store = ConnectorStore.for_settings(settings)
    owners = {r.name: r.tenant for r in store.all()}
    alerts = []
    for slot in replication_slots(store, settings):
        if "error" in slot or not slot["inactive"] or slot["retained_bytes"] < threshold:
            continue
        connector = slot["connector"]
        if tenant is not None and (connector is None or owners.get(connector) != tenant):
            continue
        why = (
            f"its connector {connector} is not running (paused or stopped)"
            if connector
            else "no connector reads it (left behind by a deleted connector or another tool)"
        )
        alerts.append(
            Alert(
                f"replication slot inactive: {slot['slot']} on {slot['server']}",
                f"Replication slot {slot['slot']} on {slot['server']} keeps {slot['retained_bytes']} bytes of WAL: "
                f"{why}. The server keeps WAL for it until its disk fills: resume the connector, or drop the slot "
                f"(POST /connectors/<name>/decommission, or SELECT pg_drop_replication_slot('{slot['slot']}')).",
            )
        )
    return alerts


@kind("lost_data")
def lost_data(rule: dict, settings: Settings, memory: dict, since: float) -> list[Alert]:
    from api.lag import lost_data as find
    from api.scoping import groups_of

    groups = groups_of(settings, rule["tenant"]) if rule.get("tenant") is not None else None
    alerts = []
    for f in find(settings, groups, tenant=rule.get("tenant")):
        if rule.get("tenant") is not None and not (f["group"] or f["writers"]):
            continue  # neither a group nor a connector of this tenant: not its data
        where = f"topic {f['topic']}" + (f" partition {f['partition']}" if f["partition"] is not None else "")
        if f["kind"] == "log_below_committed":
            what = f"ends at offset {f['end']} but group {f['group']} had committed {f['committed']}"
        elif f["group"]:
            what = f"vanished; group {f['group']} had committed offset {f['committed']}"
        else:
            what = "vanished although its source connector stored offsets (the events were acknowledged)"
        fix = "; ".join(f"POST /connectors/{w}/snapshot re-reads its tables" for w in f["writers"]) or (
            "no stored source connector writes it"
        )
        alerts.append(Alert(f"data lost: {where}", f"{where} {what}. {fix}.", level="error"))
    return alerts


def _service_window(rule: dict, settings: Settings) -> dict | None:
    """The call-log stats of the rule's service over its window, or None below min_calls."""
    from sinks.clickhouse import client_from_url
    from streams.dataservices.calllog import stats

    p = rule["params"]
    scope = rule["tenant"] if rule.get("tenant") is not None else p.get("scope", "")
    now = time.time()
    client = client_from_url(settings.clickhouse_url)
    try:
        out = stats(client, scope, p["service"], "hour", since=now - 60 * float(p.get("window_minutes", 15)), until=now)
    finally:
        client.disconnect()
    return out if out["calls"] >= int(p.get("min_calls", 20)) and out["calls"] > 0 else None


@kind("service_error_ratio")
def service_error_ratio(rule: dict, settings: Settings, memory: dict, since: float) -> list[Alert]:
    p, out = rule["params"], _service_window(rule, settings)
    if out is None or 100.0 * out["error_ratio"] <= float(p["threshold_pct"]):
        return []
    return [
        Alert(
            f"data service {p['service']}: error ratio above {p['threshold_pct']}%",
            f"{100.0 * out['error_ratio']:.1f}% of {out['calls']} calls in the last "
            f"{p.get('window_minutes', 15)} min answered 5xx. Top applications: {out['top_applications'][:5]}",
        )
    ]


@kind("service_latency")
def service_latency(rule: dict, settings: Settings, memory: dict, since: float) -> list[Alert]:
    p, out = rule["params"], _service_window(rule, settings)
    name = {0.5: "p50", 0.95: "p95", 0.99: "p99"}[p.get("quantile", 0.99)]
    if out is None or out["latency_ms"][name] <= float(p["threshold_ms"]):
        return []
    return [
        Alert(
            f"data service {p['service']}: {name} latency above {p['threshold_ms']} ms",
            f"{name} latency {out['latency_ms'][name]} ms over {out['calls']} calls in the last "
            f"{p.get('window_minutes', 15)} min (p50/p95/p99: {out['latency_ms']}).",
            level="warning",
        )
    ]


@kind("schema_change")
def schema_change(rule: dict, settings: Settings, memory: dict, since: float) -> list[Alert]:
    from connectors.schema_change_store import store_for

    tenant, only = rule.get("tenant"), rule["params"].get("connector")
    seen: set = memory.setdefault("seen", set())
    alerts = []
    for change in store_for(settings.resolved_control_db_url).since(
        since - OVERLAP, {tenant} if tenant is not None else None
    ):
        if change["id"] in seen or (only and change["connector"] != only) or change["status"] == "accepted":
            continue
        seen.add(change["id"])
        what = "; ".join(
            f"{c['kind']} {c['column']}" + (f" ({c['old_type']} -> {c['new_type']})" if c["old_type"] else "")
            for c in change["changes"]
        )
        held = change["status"] == "held"
        body = f"Connector {change['connector']}, table {change['table']}: {what}."
        if held:
            body += (
                f"\nCapture stopped: {change['reason']}\nAccept it: POST /connectors/{change['connector']}"
                f'/schema-changes/{change["id"]}/accept {{"mode": "new_version" | "new_topic"}}'
            )
        alerts.append(
            Alert(
                f"schema change {'stopped' if held else 'followed'}: {change['connector']} {change['table']}",
                body,
                level="error" if held else "warning",
            )
        )
    return alerts
