"""What a schedule (or `POST /jobs`) can run: a registry of action name -> callable.

An action is `fn(ctx: JobContext, params: dict, settings: Settings) -> dict | None`; the dict is
the run's result (numbers in it become the run's `counts`). Other modules add their own with
`@action("name")`; `noop`, `sleep` and `fail` are harmless ones for tests and smoke checks.

Actions that take paths or connection URLs in their params register with `scoped=True` and get
a 4th argument, the caller's `Scope` (tenant, superuser): every path must resolve inside the
scope's data root and every host be on its allow-list (connectors/paths.py, probes.py). They
also register a `check(params, settings, scope)` that `check_params` runs before the job is
queued (the API answers 422 naming the parameter); the action checks again when it runs.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from api.jobs import JobContext
from connectors import paths, probes
from deploy.settings import Settings

Action = Callable[..., "dict | None"]
ACTIONS: dict[str, Action] = {}
CHECKS: dict[str, Callable[[dict, Settings, Scope], None]] = {}
SCOPED: set[str] = set()
MAX_DOCUMENT_BYTES = 1 << 20


@dataclass(frozen=True)
class Scope:
    """Whose files and hosts an action may reach: a tenant's, or (superuser) the whole data root."""

    tenant: str | None
    superuser: bool = False

    @classmethod
    def of(cls, principal) -> Scope:
        return cls(getattr(principal, "tenant", None), bool(getattr(principal, "superuser", False)))

    def root(self, settings: Settings) -> Path:
        return paths.root_for(settings, self.tenant, self.superuser)

    @property
    def allow_tenant(self) -> str | None:
        return None if self.superuser else self.tenant


SERVER = Scope(None, True)  # the server's own callers (CLI, tests calling an action directly)


def action(name: str, scoped: bool = False, check=None) -> Callable[[Action], Action]:
    def register(fn: Action) -> Action:
        ACTIONS[name] = fn
        if scoped:
            SCOPED.add(name)
        if check is not None:
            CHECKS[name] = check
        return fn

    return register


def check_params(name: str, params: dict, settings: Settings, scope: Scope) -> None:
    """Raise PathRefused / HostRefused for params the caller may not use (before queueing)."""
    if name in CHECKS:
        CHECKS[name](params, settings, scope)


def bind(name: str, params: dict, settings: Settings, scope: Scope) -> Callable[[JobContext], Any]:
    """The job function running action `name` for a caller of `scope`."""
    fn = get_action(name)
    if name in SCOPED:
        return lambda ctx: fn(ctx, params, settings, scope)
    return lambda ctx: fn(ctx, params, settings)


def get_action(name: str) -> Action:
    try:
        return ACTIONS[name]
    except KeyError:
        raise KeyError(f"unknown action {name!r}; known: {sorted(ACTIONS)}") from None


def _source_checks(spec, settings: Settings, scope: Scope, param: str) -> None:
    """The pipeline's source URL: a SQLite file inside the root, another host on the allow-list."""
    url = spec.source.config.get("url")
    if not isinstance(url, str):
        return
    field = f"{param}.source.config.url"
    if paths.check_sqlite_url(url, scope.root(settings), field, settings) is None:
        probes.check_url(settings, scope.allow_tenant, url, field)


def _load_capture_spec(params: dict, settings: Settings, scope: Scope):
    """The pipeline of a capture's params; paths and URLs checked, errors naming the parameter."""
    import yaml
    from pydantic import ValidationError

    from api.jobs.errors import describe
    from connectors.pipeline import PipelineSpec

    if "document" in params:
        param, document = "params.document", params["document"]
        if not isinstance(document, dict):
            raise paths.PathRefused(param, "must be a pipeline document (an object)")
    elif "path" in params:
        param = "params.path"
        file = paths.resolve_inside(scope.root(settings), params["path"], param, settings)
        if not file.is_file():
            raise paths.PathRefused(param, "no such file inside the caller's data root")
        if file.stat().st_size > MAX_DOCUMENT_BYTES:
            raise paths.PathRefused(param, "file too large for a pipeline document")
        try:
            document = yaml.safe_load(file.read_text(encoding="utf-8"))
        except (yaml.YAMLError, UnicodeDecodeError) as exc:
            raise paths.PathRefused(param, describe(exc).split(": ", 1)[1]) from None
        if not isinstance(document, dict):
            raise paths.PathRefused(param, "the file is not a pipeline document (YAML mapping)")
    else:
        raise paths.PathRefused("params", "pipeline.capture needs params.path or params.document")
    try:
        spec = PipelineSpec.model_validate(document)
    except ValidationError as exc:
        raise paths.PathRefused(param, describe(exc).split(": ", 1)[1]) from None
    _source_checks(spec, settings, scope, param)
    from api.scoping import target_problem  # another tenant's pipeline (its topics, offsets): refused

    problem = target_problem(settings, scope.allow_tenant, {"document": document})
    if problem:
        raise paths.PathRefused(param, problem.split(": ", 1)[1])
    return spec


def _check_capture(params: dict, settings: Settings, scope: Scope) -> None:
    _load_capture_spec(params, settings, scope)


@action("pipeline.capture", scoped=True, check=_check_capture)
def pipeline_capture(ctx: JobContext, params: dict, settings: Settings, scope: Scope = SERVER) -> dict:
    """Run the pipeline's source once: every row past the stored offset goes to the source topic.

    params: `path` (pipeline YAML file inside the caller's data root) or `document` (the pipeline
    as a mapping)."""
    from connectors.pipeline import build_source, prepare_topics

    spec = _load_capture_spec(params, settings, scope)
    ctx.progress(1, f"capturing {spec.name}")
    prepare_topics(spec, settings)
    published = build_source(spec, settings).drain()
    return {"pipeline": spec.name, "published": published}


@action("noop")
def noop(ctx: JobContext, params: dict, settings: Settings) -> dict:
    return {"count": int(params.get("count", 0))}


@action("sleep")
def sleep(ctx: JobContext, params: dict, settings: Settings) -> dict:
    """Sleeps `seconds` in `steps`, reporting progress and honouring cancellation."""
    seconds, steps = float(params.get("seconds", 1)), max(1, int(params.get("steps", 10)))
    for i in range(steps):
        ctx.check_cancelled()
        time.sleep(seconds / steps)
        ctx.progress(100 * (i + 1) / steps, f"step {i + 1}/{steps}")
    return {"steps": steps}


@action("fail")
def fail(ctx: JobContext, params: dict, settings: Settings) -> Any:
    raise RuntimeError(params.get("message", "failed on purpose"))
