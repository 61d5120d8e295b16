"""Prometheus exposition of what the control DB and the broker know (ENG-01).

Exported: events per pipeline stage and metric (StageCounters), quarantined events per quality
rule, consumer lag per group/topic/partition (api/lag.py, end offsets confirmed by a tail read),
jobs by type and state, schedules and schedule runs by status, alert messages by level, sink
write latency per sink and store (`huiliu_sink_write_seconds`, a histogram SinkRunner keeps in
the stage counters, see sinks/latency.py). Worker liveness comes from the workers' heartbeats in
Redis (`huiliu_worker_up`). Data-service calls per service/version/status, their latency and the
call log's written/dropped rows (`huiliu_service_*`, counted in each API process). Not exported, because nothing the API can read records them:
per-sink SinkState (in-process only), Faust runners started outside a worker.
"""

from __future__ import annotations

from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, HistogramMetricFamily
from sqlalchemy import func, select

from deploy.control import engine_for, stage_counters
from deploy.settings import Settings
from sinks import latency


class PlatformCollector:
    def __init__(self, settings: Settings, lag_budget: float = 2.0):
        self.settings = settings
        self.lag_budget = lag_budget

    def collect(self):
        url = self.settings.resolved_control_db_url
        events = CounterMetricFamily(
            "huiliu_stage_events", "Events per pipeline stage and metric", labels=["pipeline", "stage", "metric"]
        )
        quarantine = CounterMetricFamily(
            "huiliu_quarantined_events", "Quarantined events per quality rule", labels=["pipeline", "rule"]
        )
        with engine_for(url).connect() as conn:
            rows = conn.execute(
                select(
                    stage_counters.c.pipeline, stage_counters.c.stage, stage_counters.c.metric, stage_counters.c.value
                )
            ).all()
        writes = HistogramMetricFamily(
            "huiliu_sink_write_seconds",
            "Store write duration per sink batch (retries included)",
            labels=["sink", "store"],
        )
        for (sink, store), h in latency.histograms((p, m, v) for p, s, m, v in rows if s == latency.STAGE).items():
            writes.add_metric([sink, store], h["buckets"], h["sum"])
        for pipeline, stage, metric, value in rows:
            if stage == latency.STAGE:
                continue
            if metric.startswith("quarantined."):
                quarantine.add_metric([pipeline, metric.split(".", 1)[1]], float(value))
            else:
                events.add_metric([pipeline, stage, metric], float(value))
        yield events
        yield quarantine
        yield writes
        yield from self._jobs_and_schedules(url)
        yield from self._workers()
        yield from self._lag()

    def _workers(self):
        from connectors.leases import Leases

        up = GaugeMetricFamily("huiliu_worker_up", "Connector workers with a recent heartbeat", labels=["worker"])
        try:
            for worker in Leases.for_settings(self.settings).live_workers():
                up.add_metric([worker], 1)
        except Exception:  # Redis down: /health says so; the other metrics still matter
            pass
        yield up

    def _jobs_and_schedules(self, url: str):
        from api.alerts.store import AlertStore, messages
        from api.jobs.store import JobStore
        from api.scheduling.store import ScheduleStore, schedules

        jobs = GaugeMetricFamily("huiliu_jobs", "Background jobs by type and state", labels=["type", "state"])
        for (type_, state), n in JobStore(url).counts().items():
            jobs.add_metric([type_, state], n)
        yield jobs
        store = ScheduleStore(url)
        with store.engine.connect() as conn:
            enabled = conn.execute(select(schedules.c.enabled, func.count()).group_by(schedules.c.enabled)).all()
        sched = GaugeMetricFamily("huiliu_schedules", "Schedules by enabled flag", labels=["enabled"])
        for flag, n in enabled:
            sched.add_metric([str(bool(flag)).lower()], n)
        yield sched
        runs = GaugeMetricFamily("huiliu_schedule_runs", "Schedule runs by status", labels=["status"])
        for status, n in store.status_counts().items():
            runs.add_metric([status], n)
        yield runs
        alerts = AlertStore(url)
        with alerts.engine.connect() as conn:
            levels = conn.execute(select(messages.c.level, func.count()).group_by(messages.c.level)).all()
        msgs = GaugeMetricFamily("huiliu_alert_messages", "Alert messages in the message centre", labels=["level"])
        for level, n in levels:
            msgs.add_metric([level], n)
        yield msgs

    def _lag(self):
        from api.lag import consumer_lag

        lag = GaugeMetricFamily(
            "huiliu_consumer_lag",
            "Events not yet committed by a consumer group",
            labels=["group", "topic", "partition"],
        )
        ok = GaugeMetricFamily("huiliu_consumer_lag_up", "1 when the lag could be read from the broker")
        try:
            for row in consumer_lag(self.settings, budget=self.lag_budget)["partitions"]:
                lag.add_metric([row["group"], row["topic"], str(row["partition"])], row["lag"])
            ok.add_metric([], 1)
        except Exception:  # broker down: the rest of the scrape is still useful
            ok.add_metric([], 0)
        yield lag
        yield ok


class ServiceCallCollector:
    """Data-service calls served by this API process and its call log's drops (in-process counters,
    streams/dataservices/calllog.py); its SSE streams' shared readers (fanout.py)."""

    def collect(self):
        from streams.dataservices import calllog, fanout

        yield from calllog.collect()
        yield from fanout.collect()


def render(settings: Settings) -> bytes:
    registry = CollectorRegistry(auto_describe=False)
    registry.register(PlatformCollector(settings))
    registry.register(ServiceCallCollector())
    return generate_latest(registry)
