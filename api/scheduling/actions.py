"""What a schedule (or `POST /jobs`) can run: a registry of action name -> callable.

An action is `fn(ctx: JobContext, params: dict, settings: Settings) -> dict | None`; the dict is
the run's result (numbers in it become the run's `counts`). Other modules add their own with
`@action("name")`; `noop`, `sleep` and `fail` are harmless ones for tests and smoke checks.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from api.jobs import JobContext
from deploy.settings import Settings

Action = Callable[[JobContext, dict, Settings], "dict | None"]
ACTIONS: dict[str, Action] = {}


def action(name: str) -> Callable[[Action], Action]:
    def register(fn: Action) -> Action:
        ACTIONS[name] = fn
        return fn

    return register


def get_action(name: str) -> Action:
    try:
        return ACTIONS[name]
    except KeyError:
        raise KeyError(f"unknown action {name!r}; known: {sorted(ACTIONS)}") from None


@action("pipeline.capture")
def pipeline_capture(ctx: JobContext, params: dict, settings: Settings) -> dict:
    """Run the pipeline's source once: every row past the stored offset goes to the source topic.

    params: `path` (pipeline YAML file) or `document` (the pipeline as a mapping)."""
    from deploy.pipeline import PipelineSpec, build_source, prepare_topics

    if "document" in params:
        spec = PipelineSpec.model_validate(params["document"])
    elif "path" in params:
        spec = PipelineSpec.load(params["path"])
    else:
        raise ValueError("pipeline.capture needs params.path or params.document")
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
