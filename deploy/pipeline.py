"""A pipeline document (source -> transforms and rules -> sink) and the three stages it starts.

The stages meet only at topics: the source writes `<prefix>.<system>.<schema>.<table>`, the
runner reads it and writes `.clean` and `.quarantine`, the sink reads `.clean`.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field

from connectors.relational.timestamp_mode import TimestampSourceConfig, TimestampSourceTask
from connectors.runtime import SourceRuntime
from deploy.control import StageCounters
from deploy.kafka import ensure_topics
from deploy.settings import Settings
from schemas.naming import clean_topic, quarantine_topic, topic_name
from schemas.serde import WireCodec
from sinks.clickhouse import ClickHouseSinkConfig, ClickHouseSinkTask
from sinks.runtime import SinkRunner


class SourceSpec(BaseModel):
    model_config = ConfigDict(extra="forbid")
    kind: Literal["relational.timestamp"]
    config: dict[str, Any]


class SinkSpec(BaseModel):
    model_config = ConfigDict(extra="forbid")
    kind: Literal["clickhouse"]
    config: dict[str, Any]
    topics: list[str] | None = Field(None, description="topics to read; default: the pipeline's clean topic")


class RunnerSpec(BaseModel):
    model_config = ConfigDict(extra="forbid")
    kind: Literal["faust", "lean"] = Field("faust", description="faust (default) or lean (confluent-kafka)")
    batch_size: int = Field(1000, gt=0)
    within_seconds: float = Field(0.5, gt=0)


class PipelineSpec(BaseModel):
    model_config = ConfigDict(extra="forbid")
    name: str = Field(pattern=r"^[A-Za-z0-9_\-]+$")
    description: str = ""
    owner: str | None = None
    tenant: str | None = None
    source: SourceSpec
    transforms: list[dict[str, Any]] = []
    rules: list[dict[str, Any]] = []
    runner: RunnerSpec = RunnerSpec()
    sink: SinkSpec

    @classmethod
    def load(cls, path: str | Path) -> PipelineSpec:
        return cls.model_validate(yaml.safe_load(Path(path).read_text(encoding="utf-8")))

    def source_config(self, settings: Settings) -> TimestampSourceConfig:
        cfg = {"name": f"{self.name}-source", "topic_prefix": settings.topic_prefix, **self.source.config}
        return TimestampSourceConfig.model_validate(cfg)

    def source_topic(self, settings: Settings) -> str:
        c = self.source_config(settings)
        return topic_name(c.topic_prefix, c.system, c.db_schema, c.table)

    def topics(self, settings: Settings) -> dict[str, str]:
        t = self.source_topic(settings)
        return {"source": t, "clean": clean_topic(t), "quarantine": quarantine_topic(t)}


def counters_for(spec: PipelineSpec, settings: Settings) -> StageCounters:
    return StageCounters(settings.resolved_control_db_url, spec.name)


def build_source(spec: PipelineSpec, settings: Settings) -> SourceRuntime:
    config = spec.source_config(settings)
    return SourceRuntime(
        TimestampSourceTask(config),
        bootstrap=settings.kafka_bootstrap,
        codec=WireCodec(settings.schema_registry_url),
        control_db_url=settings.resolved_control_db_url,
        topic_prefix=config.topic_prefix,
        partitions=config.partitions,
        counters=counters_for(spec, settings),
    )


def prepare_topics(spec: PipelineSpec, settings: Settings) -> None:
    ensure_topics(settings.kafka_bootstrap, list(spec.topics(settings).values()))


def build_sink(spec: PipelineSpec, settings: Settings, **runner_kwargs) -> SinkRunner:
    cfg = {"url": settings.clickhouse_url, **spec.sink.config}
    codec = WireCodec(settings.schema_registry_url)
    task = ClickHouseSinkTask(ClickHouseSinkConfig.model_validate(cfg), codec.schema_of)
    topics = spec.sink.topics or [spec.topics(settings)["clean"]]
    return SinkRunner(
        settings.kafka_bootstrap,
        f"huiliu-sink-{spec.name}",
        topics,
        codec,
        task,
        counters=counters_for(spec, settings),
        **runner_kwargs,
    )


def build_faust_app(spec: PipelineSpec, settings: Settings, session_timeout: float = 10.0):
    from streams.faust_runner import build_app  # imported late: faust is heavy and only runners need it

    settings.ensure_dirs()
    return build_app(
        spec.name,
        [spec.source_topic(settings)],
        spec.transforms,
        spec.rules,
        bootstrap=settings.kafka_bootstrap,
        registry_url=settings.schema_registry_url,
        data_dir=str(settings.state_dir / "data" / f"faust-{spec.name}"),
        batch_size=spec.runner.batch_size,
        within_seconds=spec.runner.within_seconds,
        session_timeout=session_timeout,
        counters=counters_for(spec, settings),
    )


def build_lean_runner(spec: PipelineSpec, settings: Settings, **kwargs):
    from streams.lean_runner import LeanRunner
    from streams.processor import BatchProcessor

    processor = BatchProcessor(
        WireCodec(settings.schema_registry_url), spec.transforms, spec.rules, stage=f"runner:{spec.name}"
    )
    return LeanRunner(
        settings.kafka_bootstrap,
        f"huiliu-runner-{spec.name}",
        [spec.source_topic(settings)],
        processor,
        batch_size=spec.runner.batch_size,
        batch_seconds=spec.runner.within_seconds,
        counters=counters_for(spec, settings),
        **kwargs,
    )
