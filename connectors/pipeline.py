"""A pipeline document (source -> transforms and rules -> sink) and the one way it is assembled.

The stages meet only at topics: the source writes `<prefix>.<system>.<schema>.<table>`, the
runner reads it and writes `.clean` and `.quarantine`, the sink reads `.clean`.

Assembly happens once: `stage_documents(spec)` turns a document into three connector documents
(Kafka Connect shape) — `<name>-source` (any source plugin), `<name>-runner` (`runner.lean`,
`runner.faust` or `runner.flink`) and `<name>-sink` (any sink plugin) — each carrying `pipeline: <name>`. The API
deploys them to the workers; the CLI (`huiliu pipeline run FILE`) and the local runs build the very
same runtimes from them in-process (`build_stage`). So consumer groups (`huiliu-connect-<name>-sink`,
`huiliu-runner-<name>`), stage counters (`/pipelines/<name>/stats`: source, runner, sink) and the
runner kind are the same whichever way a pipeline runs.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field

from deploy.control import StageCounters
from deploy.kafka import ensure_topics
from deploy.settings import Settings
from schemas.naming import clean_topic, quarantine_topic, topic_name
from streams.runner_task import DEFAULT_BATCH_SIZE

STAGES = ("source", "runner", "sink")


class SourceSpec(BaseModel):
    model_config = ConfigDict(extra="forbid")
    kind: str = Field(description="a source plugin (GET /connector-plugins), e.g. relational.timestamp, files")
    config: dict[str, Any]
    topic: str | None = Field(
        None, description="the raw topic the runner reads, when the source captures several tables"
    )


class SinkSpec(BaseModel):
    model_config = ConfigDict(extra="forbid")
    kind: str = Field(description="a sink plugin, e.g. clickhouse, hdfs, hbase")
    config: dict[str, Any]
    topics: list[str] | None = Field(None, description="topics to read; default: the pipeline's clean topic")


class RunnerSpec(BaseModel):
    model_config = ConfigDict(extra="forbid")
    kind: Literal["lean", "faust", "flink"] = Field(
        "lean",
        description="lean (confluent-kafka, the default), faust (Faust agents in a worker process) or "
        "flink (a Flink job: a cluster's REST API when flink_rest_url is set, else a local mini-cluster)",
    )
    batch_size: int = Field(DEFAULT_BATCH_SIZE, gt=0)
    within_seconds: float = Field(0.5, gt=0)
    parallelism: int = Field(1, ge=1, le=256, description="flink: parallel slots of the job")
    checkpoint_seconds: float = Field(10, ge=1, le=3600, description="flink: checkpoint interval")
    lookups: dict[str, str] = Field(
        default_factory=dict,
        description="reference tables fed from compacted topics, table name -> topic (lean runner): "
        "`reference` rules and lookup transforms read them, and follow the topic while running",
    )


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

    def source_document(self) -> dict[str, Any]:
        source = {k: v for k, v in self.source.config.items() if k != "name"}
        return {"connector.class": self.source.kind, "tasks.max": 1, "pipeline": self.name, **source}

    def source_topic(self, settings: Settings) -> str:
        """The raw topic: stated (`source.topic`), or named from the source's system, schema and table."""
        if self.source.topic:
            return self.source.topic
        c = self.source.config
        table, schema = c.get("table"), c.get("db_schema")
        tables = c.get("tables")
        if not table and isinstance(tables, list) and len(tables) == 1 and isinstance(tables[0], str):
            schema_part, _, table = tables[0].rpartition(".")
            schema = schema_part or schema
        if not table or not c.get("system"):
            raise ValueError("source.topic is required: this source does not name exactly one table (system + table)")
        return topic_name(c.get("topic_prefix") or settings.topic_prefix, c["system"], schema, table)

    def topics(self, settings: Settings) -> dict[str, str]:
        t = self.source_topic(settings)
        return {"source": t, "clean": clean_topic(t), "quarantine": quarantine_topic(t)}


def stage_name(pipeline: str, stage: str) -> str:
    return f"{pipeline}-{stage}"


def stage_documents(spec: PipelineSpec, settings: Settings, version: int | None = None) -> dict[str, dict[str, Any]]:
    """The three connector documents of a pipeline (the one assembly: API deploy and CLI alike)."""
    topics = spec.topics(settings)
    sink = {k: v for k, v in spec.sink.config.items() if k != "name"}
    if spec.sink.kind == "clickhouse" and "url" not in sink:
        sink["url"] = settings.clickhouse_url
    return {
        "source": spec.source_document(),
        "runner": {
            "connector.class": f"runner.{spec.runner.kind}",
            "tasks.max": 1,
            "topics": [topics["source"]],
            "transforms": spec.transforms,
            "rules": spec.rules,
            "batch_size": spec.runner.batch_size,
            "batch_seconds": spec.runner.within_seconds,
            "pipeline": spec.name,
            "pipeline_version": version,
            **({"lookups": spec.runner.lookups} if spec.runner.lookups else {}),
            **(_flink_options(spec.runner) if spec.runner.kind == "flink" else {}),
        },
        "sink": {
            "connector.class": spec.sink.kind,
            "tasks.max": 1,
            "topics": spec.sink.topics or [topics["clean"]],
            "pipeline": spec.name,
            **sink,
        },
    }


def _flink_options(runner: RunnerSpec) -> dict[str, Any]:
    """Only a Flink runner's document carries these: the lean and Faust ones stay as they were."""
    return {"parallelism": runner.parallelism, "checkpoint_interval_seconds": runner.checkpoint_seconds}


def counters_for(spec: PipelineSpec, settings: Settings) -> StageCounters:
    return StageCounters(settings.resolved_control_db_url, spec.name)


def prepare_topics(spec: PipelineSpec, settings: Settings) -> None:
    ensure_topics(settings.kafka_bootstrap, list(spec.topics(settings).values()))


def build_stage(spec: PipelineSpec, stage: str, settings: Settings, **sink_kwargs):
    """The runtime of one stage, built from its connector document exactly as a worker builds it:
    a SourceRuntime (source), a task that runs itself (runner), a SinkRunner (sink)."""
    from connectors.store import ConnectorRecord
    from connectors.task_runner import build_runtime

    document = stage_documents(spec, settings)[stage]
    name = stage_name(spec.name, stage)
    record = ConnectorRecord(name, stage, document["connector.class"], document, "RUNNING", 0, 1, 0.0, 0.0, spec.tenant)
    return build_runtime(record, settings, **sink_kwargs)


def build_source(spec: PipelineSpec, settings: Settings):
    return build_stage(spec, "source", settings)


def build_sink(spec: PipelineSpec, settings: Settings, **runner_kwargs):
    return build_stage(spec, "sink", settings, **runner_kwargs)
