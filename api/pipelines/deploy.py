"""Deploy a stored pipeline as three connectors the workers run: `<name>-source`, `<name>-runner`, `<name>-sink`.

    source  relational.timestamp   the document's source config        -> <prefix>.<system>.<schema>.<table>
    runner  runner.lean            topics = [the source topic], transforms, rules -> .clean / .quarantine
    sink    clickhouse             topics = [the clean topic] (or the sink's own topics)

Deploying is idempotent: a connector whose config is unchanged is left alone (its tasks keep
running); a changed one is replaced (the workers restart it). The deployed pipeline version is
recorded in the runner connector's config (`pipeline_version`). Configs are checked with the
connector validation (static and live) before anything is stored.
"""

from __future__ import annotations

from typing import Any

from connectors.store import ConnectorStore
from connectors.validation import validate
from deploy.pipeline import PipelineSpec, prepare_topics

STAGES = ("source", "runner", "sink")


class DeployInvalid(ValueError):
    def __init__(self, errors: list[dict[str, str]]):
        super().__init__("; ".join(f"{e['field']}: {e['message']}" for e in errors))
        self.errors = errors


def connector_name(pipeline: str, stage: str) -> str:
    return f"{pipeline}-{stage}"


def connector_configs(spec: PipelineSpec, settings, version: int) -> dict[str, dict[str, Any]]:
    """The three connector documents (Kafka Connect shape) of a pipeline version."""
    topics = spec.topics(settings)
    source = {k: v for k, v in spec.source.config.items() if k != "name"}
    sink = {k: v for k, v in spec.sink.config.items() if k != "name"}
    if spec.sink.kind == "clickhouse" and "url" not in sink:
        sink["url"] = settings.clickhouse_url  # as deploy.pipeline.build_sink
    return {
        "source": {"connector.class": spec.source.kind, "tasks.max": 1, **source},
        "runner": {
            "connector.class": "runner.lean",
            "tasks.max": 1,
            "topics": [topics["source"]],
            "transforms": spec.transforms,
            "rules": spec.rules,
            "batch_size": spec.runner.batch_size,
            "batch_seconds": spec.runner.within_seconds,
            "pipeline": spec.name,
            "pipeline_version": version,
        },
        "sink": {
            "connector.class": spec.sink.kind,
            "tasks.max": 1,
            "topics": spec.sink.topics or [topics["clean"]],
            **sink,
        },
    }


def deploy(store: ConnectorStore, name: str, current: dict[str, Any], settings) -> dict[str, Any]:
    """`current` is the pipeline store's {version, document}. Raises DeployInvalid before storing anything."""
    spec = PipelineSpec.model_validate(current["document"])
    configs = connector_configs(spec, settings, current["version"])
    specs, errors = {}, []
    for stage, config in configs.items():
        cname = connector_name(name, stage)
        found, errs = validate(cname, config, settings, tenant=current["document"].get("tenant"))  # its scope
        errors += [{"field": f"{stage}.{e.field}", "message": e.message} for e in errs]
        specs[stage] = found
    if errors:
        raise DeployInvalid(errors)
    try:
        prepare_topics(spec, settings)  # so every stage subscribes to topics that exist
    except Exception as exc:
        raise DeployInvalid([{"field": "topics", "message": f"cannot create the pipeline's topics: {exc}"}]) from exc
    changed = []
    for stage in reversed(STAGES):  # sink first, source last: nothing is produced before it is read
        found = specs[stage]
        existing = store.get(found.name)
        if existing is None or existing.config != found.config:
            store.upsert(found)
            changed.append(stage)
    return {
        "pipeline": name,
        "version": current["version"],
        "connectors": {stage: connector_name(name, stage) for stage in STAGES},
        "changed": changed,
    }


def undeploy(store: ConnectorStore, name: str) -> list[str]:
    """Delete the pipeline's connectors (source first); the names that existed."""
    return [stage for stage in STAGES if store.delete(connector_name(name, stage))]


def deployed_version(store: ConnectorStore, name: str) -> int | None:
    runner = store.get(connector_name(name, "runner"))
    return runner.config.get("pipeline_version") if runner else None
