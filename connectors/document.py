"""A connector document (Kafka Connect shape) and the tasks it splits into.

    {"name": "pg-people", "config": {"connector.class": "relational.timestamp", "tasks.max": 1,
                                     "url": "...", "table": "people", ...}}

`connector.class` (alias `class` / `plugin`, optionally with `mode`: class `relational` + mode
`timestamp`) picks the plugin; `tasks.max` and, for sinks, `topics` belong to the runtime; every
other key belongs to the plugin's config model. `name` and `topic_prefix` are filled in when the
model has them, so offsets are stored under the connector name; `control_db_url` likewise.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from pydantic import BaseModel, ValidationError

from connectors import plugins
from connectors.plugins import Plugin
from schemas.field_errors import FieldError

CLASS_KEYS = ("connector.class", "class", "plugin")
RUNTIME_KEYS = {"connector.class", "class", "plugin", "mode", "tasks.max", "topics", "name", "pipeline"}
NAME_PATTERN = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.\-]{0,199}$")


@dataclass
class ConnectorSpec:
    name: str
    plugin: Plugin
    config: dict[str, Any]  # as the user wrote it (secrets in clear: callers mask or encrypt it)
    plugin_config: BaseModel
    tasks_max: int
    topics: list[str]
    pipeline: str | None = None  # the pipeline this connector is a stage of (stage counters go there)

    @property
    def kind(self) -> str:
        return self.plugin.kind

    def task_count(self) -> int:
        # A source mode captures its tables in one task; sink tasks share a consumer group.
        return 1 if self.kind == "source" else self.tasks_max

    def task_ids(self) -> list[int]:
        return list(range(self.task_count()))


def plugin_name(config: dict[str, Any]) -> str | None:
    cls = next((config[k] for k in CLASS_KEYS if config.get(k)), None)
    if cls and config.get("mode") and not plugins.known(str(cls)):
        return f"{cls}.{config['mode']}"  # class "relational" + mode "timestamp"
    return cls


def _field_name(loc: tuple) -> str:
    return ".".join(str(p) for p in loc) or "config"


def _message(err: dict) -> str:
    if err["type"] == "extra_forbidden":
        return "unknown key"
    if err["type"] == "missing":
        return "field required"
    return err["msg"]


def parse(name: str | None, config: Any, settings=None) -> tuple[ConnectorSpec | None, list[FieldError]]:
    """Static validation: the document's shape and the plugin's config model (no connections)."""
    errors: list[FieldError] = []
    if not isinstance(config, dict):
        return None, [FieldError("config", "must be an object of configuration keys")]
    name = name or config.get("name")
    if not name or not isinstance(name, str) or not NAME_PATTERN.match(name):
        errors.append(FieldError("name", "required: letters, digits, '.', '_' or '-' (at most 200)"))
    elif config.get("name") not in (None, name):
        errors.append(FieldError("name", f"config name {config.get('name')!r} differs from connector name {name!r}"))
    cls = plugin_name(config)
    if not cls:
        return None, errors + [FieldError("connector.class", "field required: the plugin, e.g. relational.timestamp")]
    try:
        plugin = plugins.get(str(cls))
    except plugins.UnknownPlugin as exc:
        return None, errors + [FieldError("connector.class", str(exc))]
    tasks_max = config.get("tasks.max", 1)
    try:
        tasks_max = int(tasks_max)
        if tasks_max < 1:
            raise ValueError
    except (TypeError, ValueError):
        errors.append(FieldError("tasks.max", "must be a positive integer"))
        tasks_max = 1
    topics = config.get("topics") or []
    if isinstance(topics, str):
        topics = [t.strip() for t in topics.split(",") if t.strip()]
    if plugin.reads_topics and not topics:
        errors.append(
            FieldError("topics", f"field required: the topics this {plugin.kind} reads (list or comma separated)")
        )
    elif plugin.kind == "source" and "topics" in config:
        errors.append(FieldError("topics", "unknown key for a source (topics are named from system, schema, table)"))
    fields = plugin.config_model.model_fields
    # `mode` picks the plugin unless the plugin's own model has a `mode` setting; `pipeline` goes to
    # the runtime, and to the plugin too when its model asks for it (a runner labels its stage)
    values = {k: v for k, v in config.items() if k not in RUNTIME_KEYS or (k in ("mode", "pipeline") and k in fields)}
    pipeline = config.get("pipeline")
    if pipeline is not None and (not isinstance(pipeline, str) or not NAME_PATTERN.match(pipeline)):
        errors.append(FieldError("pipeline", "must be a pipeline name"))
        pipeline = None
    if "name" in fields:
        values["name"] = name
    if settings is not None:  # runtime-wide settings a plugin may ask for by field name
        for key, value in (
            ("topic_prefix", settings.topic_prefix),
            ("control_db_url", settings.resolved_control_db_url),
        ):
            if key in fields and key not in values:
                values[key] = value
    try:
        model = plugin.config_model.model_validate(values)
    except ValidationError as exc:
        errors += [FieldError(_field_name(e["loc"]), _message(e)) for e in exc.errors()]
        model = None
    if model is not None and plugin.check is not None:  # the plugin's own checks (e.g. rules compile)
        errors += plugin.check(model)
    if errors or model is None:
        return None, errors
    return ConnectorSpec(name, plugin, dict(config), model, tasks_max, list(topics), pipeline), []
