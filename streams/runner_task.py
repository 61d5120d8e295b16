"""A pipeline's runner stage as connector plugins, so a worker runs it: `runner.lean` (confluent-kafka,
in the worker's thread) and `runner.faust` (Faust agents, in a worker process of their own: Faust
owns its event loop and signals). Both read the same config and check it the same way
(`check_runner`: the transforms and rules compile, as the runner will build them).

The task runs itself: the worker calls `run(stop)`, which is a LeanRunner (consume a batch,
process it, publish clean and quarantine outputs, wait for the broker's acks, then commit the
input: at-least-once) over the connector's `topics`. The connector document:
{"connector.class": "runner.lean", "topics": [source topic], "transforms": [...], "rules": [...],
"pipeline": name}.
"""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import threading
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

# Events a runner takes a batch (at most: a batch also ends after its wait). Each batch costs the
# processor ~10 ms whatever its size (about a hundred polars, numpy and Arrow calls), so 1,000-event
# batches cost ~14 us of CPU an event and 10,000 ~6 (bench_runner.py --batch); peak RSS ~270 MB at
# 10,000 against ~300 at 20,000. The wait, not the size, bounds a quiet topic's latency.
DEFAULT_BATCH_SIZE = 10_000


class LeanRunnerConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")
    topics: list[str] = Field(default_factory=list, description="input topics (a worker uses the connector's `topics`)")
    transforms: list[dict[str, Any]] = []
    rules: list[dict[str, Any]] = []
    batch_size: int = Field(DEFAULT_BATCH_SIZE, gt=0, description="messages per batch (at most)")
    batch_seconds: float = Field(0.5, gt=0, description="longest wait for a batch to fill")
    pipeline: str | None = Field(None, description="pipeline name: stage counters and the quarantine stage label")
    pipeline_version: int | None = Field(None, description="the pipeline version this runner was deployed from")
    lookups: dict[str, str] = Field(
        default_factory=dict, description="reference tables fed from compacted topics: table name -> topic"
    )


class LeanRunnerTask:
    def __init__(self, config: LeanRunnerConfig, settings, connector: str | None = None, tenant: str | None = None):
        from schemas.serde import WireCodec
        from streams.processor import BatchProcessor

        self.config = config
        self.settings = settings
        self.scope = tenant or ""  # the connector's tenant ("" = the operator's): its metrics rows are kept there
        self.topics = list(config.topics)
        self.name = config.pipeline or connector or "runner"
        # Built now: a transform that cannot run here is a config error, reported before any batch.
        self.processor = BatchProcessor(
            WireCodec(settings.schema_registry_url),
            config.transforms,
            config.rules,
            stage=f"runner:{self.name}",
            lookups=config.lookups or None,
            bootstrap=settings.kafka_bootstrap,
        )
        self.counters = None
        if config.pipeline:
            from deploy.control import StageCounters

            self.counters = StageCounters(settings.resolved_control_db_url, config.pipeline)

    def run(self, stop: threading.Event) -> None:
        from streams.lean_runner import LeanRunner

        runner = LeanRunner(
            self.settings.kafka_bootstrap,
            f"huiliu-runner-{self.name}",
            self.topics,
            self.processor,
            batch_size=self.config.batch_size,
            batch_seconds=self.config.batch_seconds,
            counters=self.counters,
            consumer_extra={"session.timeout.ms": 10000},
            metrics=self._metrics(),
        )
        try:
            runner.run(stop)
        finally:
            self.processor.close()

    def _metrics(self):
        return metrics_writer(self.settings, self.scope, self.config, self.processor)


def metrics_writer(settings, scope: str, config: LeanRunnerConfig, processor):
    """The per-window quality metrics writer (quality_stream/metrics) of a pipeline's runner with
    rules, else None. Lean and Faust runners both take theirs from here, so their rows are alike."""
    if not (config.pipeline and config.rules and config.topics):
        return None
    from quality_stream.metrics.writer import MetricsWriter

    return MetricsWriter(settings.clickhouse_url, scope or "", config.pipeline, config.topics[0], processor.rules)


def lean_runner_plugin(config: LeanRunnerConfig, ctx) -> LeanRunnerTask:
    return LeanRunnerTask(config, ctx.settings, ctx.connector, ctx.tenant)


def check_runner(config: LeanRunnerConfig) -> list:
    """The transforms and rules of a runner compile (what BatchProcessor will build), as field errors."""
    from quality_stream.errors import RuleConfigError
    from quality_stream.lookup import LookupTable
    from quality_stream.ruleset import RuleSet
    from schemas.field_errors import FieldError
    from streams.processor import ROW_DROPPING
    from streams.transforms import TransformConfigError, build_transforms

    tables = {name: LookupTable() for name in config.lookups}  # named: the runner feeds them from topics
    errors: list[FieldError] = []
    for i, step in enumerate(config.transforms):
        if step.get("kind") in ROW_DROPPING:
            errors.append(FieldError(f"transforms.{i}.kind", "drops rows, which a runner cannot map back to messages"))
    try:
        build_transforms(config.transforms, lookups=tables)
    except TransformConfigError as exc:
        index = re.match(r"#(\d+)", str(exc.step))  # steps are named "#<index> (<kind>)"
        i = int(index.group(1)) if index else None
        where = f"transforms.{i}" if i is not None else "transforms"
        errors.append(FieldError(f"{where}.{exc.field}" if exc.field else where, str(exc)))
    try:
        RuleSet.from_config(config.rules, lookups=tables)
    except RuleConfigError as exc:
        i = next((n for n, r in enumerate(config.rules) if isinstance(r, dict) and r.get("id") == exc.rule_id), None)
        if i is None and str(exc.rule_id or "").startswith("#"):
            i = int(str(exc.rule_id)[1:])
        where = f"rules.{i}" if i is not None else "rules"
        errors.append(FieldError(f"{where}.{exc.field}" if exc.field else where, str(exc)))
    return errors


class FaustRunnerTask:
    """Supervises a Faust worker process running the stage (`huiliu pipeline faust-worker CONFIG`):
    started by `run`, stopped (SIGTERM, then SIGKILL) when the worker asks; a worker that dies is
    an error, which the task runner retries."""

    def __init__(self, config: LeanRunnerConfig, settings, connector: str | None = None, tenant: str | None = None):
        if config.lookups:  # refused, not ignored: reference rules would judge rows against no table
            raise ValueError("lookups fed from topics run in the lean runner only; use runner kind lean")
        self.config = config
        self.settings = settings
        self.topics = list(config.topics)
        self.name = config.pipeline or connector or "runner"
        self.scope = tenant or ""  # the connector's tenant: the worker's quality metrics rows are kept there

    def run(self, stop: threading.Event) -> None:
        from deploy.settings import settings_env

        run_dir = Path(self.settings.state_dir) / "run"
        run_dir.mkdir(parents=True, exist_ok=True)
        config_path = run_dir / f"faust-{self.name}.json"
        fd = os.open(config_path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as f:
            json.dump({**self.config.model_dump(), "topics": self.topics}, f)
        log_path = Path(self.settings.state_dir) / "logs" / f"faust-{self.name}.log"
        log_path.parent.mkdir(parents=True, exist_ok=True)
        env = {**os.environ, **settings_env(self.settings)}
        with open(log_path, "ab") as log:
            proc = subprocess.Popen(
                [sys.executable, "-m", "api.cli", "pipeline", "faust-worker", str(config_path), "--scope", self.scope],
                env=env,
                stdout=log,
                stderr=subprocess.STDOUT,
                preexec_fn=_die_with_parent,
            )
        supervise_child(proc, stop, "the Faust worker", log_path)


def supervise_child(proc: subprocess.Popen, stop: threading.Event, what: str, log_path: Path) -> None:
    """Until `stop`: a child that exits is an error (the task runner retries); then SIGTERM, SIGKILL after 30 s."""
    try:
        while not stop.wait(0.5):
            if proc.poll() is not None:
                raise RuntimeError(f"{what} exited with status {proc.returncode} (log: {log_path})")
    finally:
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(30)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()


def _die_with_parent() -> None:
    """In the child: SIGTERM when the worker that started it dies, even by SIGKILL (Linux)."""
    import ctypes

    try:
        ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG
    except OSError:
        pass


def faust_runner_plugin(config: LeanRunnerConfig, ctx) -> FaustRunnerTask:
    return FaustRunnerTask(config, ctx.settings, ctx.connector, ctx.tenant)


def run_faust_worker(config: LeanRunnerConfig, settings, loglevel: str = "warn", scope: str = "") -> None:
    """In this process's main thread: the Faust app of a runner stage, until SIGTERM. Its quality
    metrics (when it has rules) go to ClickHouse under `scope` (the connector's tenant)."""
    from deploy.control import StageCounters
    from deploy.kafka import ensure_topics
    from schemas.naming import clean_topic, quarantine_topic
    from streams.faust_runner import build_app, run_worker

    name = config.pipeline or "runner"
    settings.ensure_dirs()
    ensure_topics(
        settings.kafka_bootstrap,
        config.topics + [out(t) for t in config.topics for out in (clean_topic, quarantine_topic)],
    )
    app = build_app(
        name,
        config.topics,
        config.transforms,
        config.rules,
        bootstrap=settings.kafka_bootstrap,
        registry_url=settings.schema_registry_url,
        data_dir=str(Path(settings.state_dir) / "data" / f"faust-{name}"),
        batch_size=config.batch_size,
        within_seconds=config.batch_seconds,
        counters=StageCounters(settings.resolved_control_db_url, config.pipeline) if config.pipeline else None,
        metrics_for=lambda processor: metrics_writer(settings, scope, config, processor),
    )
    sys.argv = [sys.argv[0]]  # Faust's worker parses argv itself
    try:
        run_worker(app, loglevel=loglevel)
    finally:  # SIGTERM ends the worker with SystemExit: the open windows are written first
        if app.huiliu_metrics:
            app.huiliu_metrics.close()
