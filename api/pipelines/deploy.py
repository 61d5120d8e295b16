"""Deploy a stored pipeline as three connectors the workers run: `<name>-source`, `<name>-runner`, `<name>-sink`.

    source  any source plugin        the document's source config        -> <prefix>.<system>.<schema>.<table>
    runner  runner.lean/.faust       topics = [the source topic], transforms, rules -> .clean / .quarantine
    sink    any sink plugin          topics = [the clean topic] (or the sink's own topics)

The documents come from `connectors.pipeline.stage_documents`, the one assembly the CLI uses too.

Deploying is idempotent: a connector whose config is unchanged is left alone (its tasks keep
running); a changed one is replaced (the workers restart it). The deployed pipeline version is
recorded in the runner connector's config (`pipeline_version`). Configs are checked with the
connector validation (static and live) before anything is stored.

Tenants: the connectors belong to the pipeline's tenant. A connector of that name owned by a
tenant the deploying caller does not see is never replaced, deleted or reported (its name is
"not available"); one the caller sees (e.g. the pipeline moved between the caller's tenants) moves
with the pipeline.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from connectors.pipeline import STAGES, PipelineSpec, prepare_topics, stage_documents
from connectors.store import ConnectorStore
from connectors.validation import validate


class DeployInvalid(ValueError):
    def __init__(self, errors: list[dict[str, str]]):
        super().__init__("; ".join(f"{e['field']}: {e['message']}" for e in errors))
        self.errors = errors


def connector_name(pipeline: str, stage: str) -> str:
    return f"{pipeline}-{stage}"


def connector_configs(spec: PipelineSpec, settings, version: int) -> dict[str, dict[str, Any]]:
    """The three connector documents (Kafka Connect shape) of a pipeline version."""
    return stage_documents(spec, settings, version)


def _own(store: ConnectorStore, cname: str, tenant: str | None) -> bool:
    """Does connector `cname` exist and belong to `tenant`?"""
    exists, owner = store.tenant_of(cname)
    return exists and owner == tenant


def deploy(
    store: ConnectorStore,
    name: str,
    current: dict[str, Any],
    settings,
    sees: Callable[[str | None], bool] = lambda tenant: True,
) -> dict[str, Any]:
    """`current` is the pipeline store's {version, document}; the connectors get the document's
    tenant. `sees(tenant)`: may the caller take over a same-named connector of that tenant?
    Raises DeployInvalid before storing anything."""
    spec = PipelineSpec.model_validate(current["document"])
    tenant = current["document"].get("tenant")
    configs = connector_configs(spec, settings, current["version"])
    specs, errors = {}, []
    for stage, config in configs.items():
        cname = connector_name(name, stage)
        found, errs = validate(cname, config, settings, tenant=tenant, store=store)  # paths, hosts: the tenant's
        errors += [{"field": f"{stage}.{e.field}", "message": e.message} for e in errs]
        known, owner = store.last_owner(cname)  # also a deleted one's: its offsets are that tenant's
        if known and owner != tenant and not sees(owner):
            errors.append({"field": stage, "message": f"connector name {cname} is not available"})
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
        if existing is None or existing.config != found.config or existing.tenant != tenant:
            store.upsert(found, tenant=tenant)
            changed.append(stage)
    return {
        "pipeline": name,
        "version": current["version"],
        "connectors": {stage: connector_name(name, stage) for stage in STAGES},
        "changed": changed,
    }


def undeploy(
    store: ConnectorStore, name: str, tenant: str | None = None, retire: Callable[[Any], Any] | None = None
) -> list[str]:
    """Delete the pipeline's connectors of `tenant` (source first); the stages that existed.
    `retire(record)` runs before each deletion (a log-CDC source drops its replication slot there;
    if it raises, that connector and the later stages are kept)."""
    removed = []
    for stage in STAGES:
        cname = connector_name(name, stage)
        if not _own(store, cname, tenant):
            continue
        record = store.get(cname)
        if retire is not None and record is not None:
            retire(record)
        if store.delete(cname):
            removed.append(stage)
    return removed


def deployed_version(store: ConnectorStore, name: str, tenant: str | None = None) -> int | None:
    runner = store.get(connector_name(name, "runner"))
    return runner.config.get("pipeline_version") if runner and runner.tenant == tenant else None
