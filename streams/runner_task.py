"""The lean runner as a connector plugin (`runner.lean`), so a worker can run a pipeline's runner stage.

The task runs itself: the worker calls `run(stop)`, which is a LeanRunner (consume a batch,
process it, publish clean and quarantine outputs, wait for the broker's acks, then commit the
input: at-least-once) over the connector's `topics`. The connector document:
{"connector.class": "runner.lean", "topics": [source topic], "transforms": [...], "rules": [...],
"pipeline": name}.
"""

from __future__ import annotations

import threading
from typing import Any

from pydantic import BaseModel, ConfigDict, Field


class LeanRunnerConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")
    topics: list[str] = Field(default_factory=list, description="input topics (a worker uses the connector's `topics`)")
    transforms: list[dict[str, Any]] = []
    rules: list[dict[str, Any]] = []
    batch_size: int = Field(1000, gt=0, description="messages per batch")
    batch_seconds: float = Field(0.5, gt=0, description="longest wait for a batch to fill")
    pipeline: str | None = Field(None, description="pipeline name: stage counters and the quarantine stage label")
    pipeline_version: int | None = Field(None, description="the pipeline version this runner was deployed from")


class LeanRunnerTask:
    def __init__(self, config: LeanRunnerConfig, settings, connector: str | None = None):
        from schemas.serde import WireCodec
        from streams.processor import BatchProcessor

        self.config = config
        self.settings = settings
        self.topics = list(config.topics)
        self.name = config.pipeline or connector or "runner"
        # Built now: a transform that cannot run here is a config error, reported before any batch.
        self.processor = BatchProcessor(
            WireCodec(settings.schema_registry_url), config.transforms, config.rules, stage=f"runner:{self.name}"
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
        )
        try:
            runner.run(stop)
        finally:
            self.processor.close()


def lean_runner_plugin(config: LeanRunnerConfig, ctx) -> LeanRunnerTask:
    return LeanRunnerTask(config, ctx.settings, ctx.connector)
