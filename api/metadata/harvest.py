"""The harvest job: every connector a caller may see (or the ones named) hands its harvest steps
(connectors/catalog.py); each step's result is stored under the connector's tenant. A step that
fails is reported and the others go on; the job fails only when nothing could be read.

    targets = harvest_targets(settings, tenants, names)   # LookupError naming an unknown connector
    job_fn = harvest_job(settings, targets)               # fn(ctx) for JobManager.submit

The schedule action `metadata.harvest` (params: optional `connectors`, a list of names) runs the
same job for the schedule's tenant; api/metadata/triggers.py queues it when a connector starts.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from api.jobs import JobContext
from api.metadata import catalog_store
from api.metadata.lineage import connector_edges
from api.scheduling.actions import Scope, action
from api.scoping import connector_store
from connectors.catalog import Step, harvest_steps
from connectors.paths import PathRefused
from connectors.topics import connector_topics
from schemas.catalog.lineage import replace_edges
from schemas.catalog.store import scope_of


@dataclass(frozen=True)
class Target:
    connector: str
    tenant: str | None
    steps: tuple[Step, ...]
    record: Any = None


def harvest_targets(settings, tenants: set[str] | None, names: list[str] | None = None) -> list[Target]:
    records = connector_store(settings).all(tenants)
    if names:
        known = {r.name: r for r in records}
        missing = [n for n in names if n not in known]
        if missing:
            raise LookupError(f"connectors: no connector {', '.join(missing)}")
        records = [known[n] for n in names]
    targets = []
    for record in records:
        try:
            topics = connector_topics(record, settings)
        except Exception:  # a document the current code no longer parses still has its tables
            topics = []
        steps = harvest_steps(record.plugin, record.config, settings, topics)
        if steps:
            targets.append(Target(record.name, record.tenant, tuple(steps), record))
    return targets


def harvest_job(settings, targets: list[Target]):
    def run(ctx: JobContext) -> dict[str, Any]:
        store = catalog_store(settings)
        total = sum(len(t.steps) for t in targets) or 1
        done, outcomes, errors = 0, [], []
        for target in targets:
            for step in target.steps:
                ctx.check_cancelled()
                ctx.progress(100 * done / total, f"{target.connector}: reading {step.label}")
                try:
                    outcome = store.record(step.run(), scope_of(target.tenant))
                    outcomes.append({"connector": target.connector, "step": step.label, **outcome.as_dict()})
                except Exception as exc:  # one unreachable source must not stop the others' harvest
                    errors.append(f"{target.connector} ({step.label}): {type(exc).__name__}: {str(exc)[:300]}")
                done += 1
        _lineage(settings, store, targets, errors)
        if errors and not outcomes:
            raise RuntimeError("nothing could be harvested: " + "; ".join(errors)[:1500])
        new = sum(o["new"] for o in outcomes)
        changed = sum(len(o["changed"]) for o in outcomes)
        ctx.progress(100, f"{len(targets)} connectors: {new} new datasets, {changed} changed, {len(errors)} errors")
        return {"connectors": [t.connector for t in targets], "harvested": outcomes, "errors": errors}

    return run


def _order(target: Target) -> int:
    return {"source": 1, "processor": 2, "sink": 3}.get(target.record.kind, 3)


def _lineage(settings, store, targets: list[Target], errors: list[str]) -> None:
    """Edges of each connector, writers first: a topic without a subject yet gets its writer's fields."""
    for target in sorted((t for t in targets if t.record is not None), key=_order):
        scope = scope_of(target.tenant)
        try:
            edges = connector_edges(target.record, settings, store, scope)
            replace_edges(store.engine, scope, f"connector:{target.connector}", edges)
        except Exception as exc:  # lineage of one document must not hide the harvest of the others
            errors.append(f"{target.connector} (lineage): {type(exc).__name__}: {str(exc)[:300]}")


def _schedule_names(params: dict) -> list[str] | None:
    unknown = sorted(set(params) - {"connectors"})
    if unknown:
        raise PathRefused(f"params.{unknown[0]}", "metadata.harvest takes only `connectors` (a list of names)")
    names = params.get("connectors")
    if names is not None and (
        not isinstance(names, list) or not all(isinstance(n, str) and n for n in names) or len(names) > 1000
    ):
        raise PathRefused("params.connectors", "must be a list of connector names")
    return names or None


def _scope_tenants(scope: Scope) -> set[str] | None:
    if scope.superuser:
        return None
    return {scope.tenant} if scope.tenant else set()


def _check_schedule(params: dict, settings, scope: Scope) -> None:
    try:
        harvest_targets(settings, _scope_tenants(scope), _schedule_names(params))
    except LookupError as exc:
        raise PathRefused("params.connectors", str(exc).split(": ", 1)[-1]) from None


@action("metadata.harvest", scoped=True, check=_check_schedule)
def scheduled_harvest(ctx: JobContext, params: dict, settings, scope: Scope) -> dict[str, Any]:
    """Harvest the connectors of the schedule's tenant (or the ones named in params.connectors)."""
    try:
        targets = harvest_targets(settings, _scope_tenants(scope), _schedule_names(params))
    except LookupError as exc:  # a connector deleted since the schedule was saved
        raise PathRefused("params.connectors", str(exc).split(": ", 1)[-1]) from None
    if not targets:
        ctx.progress(100, "no connector has anything to harvest")
        return {"connectors": [], "harvested": [], "errors": []}
    result = harvest_job(settings, targets)(ctx)
    result["datasets"] = sum(o["datasets"] for o in result["harvested"])
    result["new"] = sum(o["new"] for o in result["harvested"])
    return result
