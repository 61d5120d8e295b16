"""The connector plugin registry: a plugin name -> its config model and how to build its task.

Three kinds: a `source` writes topics, a `processor` (a pipeline's runner stage) reads topics and
writes topics, a `sink` reads topics into a store. Kafka Connect knows only sources and sinks, so
its REST shape calls a processor a sink (`connect_type`); Huiliu's own answers say `kind`.

Registering a plugin is one line. Either in `BUILTIN` below, by dotted path, imported only when
the plugin is first used (so a mode whose module does not exist yet is simply "unavailable"):

    "relational.snapshot": source("connectors.relational.snapshot_mode"),

where the module decorates its task: `@source_plugin("relational.snapshot", config_model=Cfg)`;
or naming the classes when the module has no decorator:

    "relational.timestamp": source("mod:TaskClass", config="mod:ConfigModel"),

A task is built by `factory(config, ctx)` when a factory is given, else `TaskClass(config)`.
Third-party plugins need no edit here: an installed distribution declares them in the
`huiliu.plugins` entry-point group (see `_load_entry_points`).
"""

from __future__ import annotations

import importlib
import logging
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from typing import Any

from pydantic import BaseModel

from deploy.version import huiliu_version
from schemas.optional import MissingExtra

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class TaskContext:
    """What a factory may need besides the config: settings, a registry codec, the connector name
    and its tenant (what the task writes under a tenant, e.g. quality metrics, is kept there)."""

    connector: str
    settings: Any
    codec: Any
    tenant: str | None = None


@dataclass(frozen=True)
class Plugin:
    name: str
    kind: str  # "source" | "processor" | "sink"
    config_model: type[BaseModel]
    factory: Callable[[BaseModel, TaskContext], Any]
    dialects: tuple[str, ...] | None = None  # SQLAlchemy backend names a mode supports; None = any
    description: str = ""
    version: str = field(default_factory=huiliu_version)
    # Checks beyond the config model, without connecting (e.g. a runner's rules compile): -> FieldErrors
    check: Callable[[BaseModel], list] | None = None

    def build(self, config: BaseModel, ctx: TaskContext):
        return self.factory(config, ctx)

    @property
    def reads_topics(self) -> bool:
        """Processors and sinks consume topics (named in `topics`, tasks sharing a consumer group)."""
        return reads_topics(self.kind)


KINDS = ("source", "processor", "sink")


def reads_topics(kind: str) -> bool:
    return kind != "source"


def connect_type(kind: str) -> str:
    """The `type` of Kafka Connect's REST answers, which has only source and sink."""
    return "source" if kind == "source" else "sink"


@dataclass(frozen=True)
class Lazy:
    """A plugin known by dotted path only; resolved (imported) on first use."""

    kind: str
    target: str  # "module" (self-registering) or "module:TaskClassOrFactory"
    config: str | None = None  # "module:ConfigModel" when target names a class
    dialects: tuple[str, ...] | None = None
    description: str = ""
    check: str | None = None  # "module:function" (see Plugin.check)


def source(
    target: str, config: str | None = None, dialects: tuple[str, ...] | None = None, description: str = ""
) -> Lazy:
    return Lazy("source", target, config, dialects, description)


def sink(target: str, config: str | None = None, description: str = "", check: str | None = None) -> Lazy:
    return Lazy("sink", target, config, None, description, check)


def processor(target: str, config: str | None = None, description: str = "", check: str | None = None) -> Lazy:
    return Lazy("processor", target, config, None, description, check)


def _clickhouse(config, ctx: TaskContext):
    from sinks.clickhouse import ClickHouseSinkTask

    return ClickHouseSinkTask(config, ctx.codec.schema_of)


BUILTIN: dict[str, Lazy] = {
    "relational.timestamp": source(
        "connectors.relational.timestamp_mode:TimestampSourceTask",
        config="connectors.relational.timestamp_mode:TimestampSourceConfig",
        description="timestamp / monotonic column increments (AGG-02)",
    ),
    "relational.snapshot": source("connectors.relational.snapshot_mode"),
    "relational.trigger": source("connectors.relational.trigger_mode"),
    "relational.diff": source("connectors.relational.diff_mode"),
    "relational.pg_logical": source(
        "connectors.relational.pg_logical:PgLogicalTask",
        config="connectors.relational.pg_logical:PgLogicalConfig",
        dialects=("postgresql",),
        description="log-based CDC: PostgreSQL logical decoding (AGG-02)",
    ),
    "relational.mysql_binlog": source(
        "connectors.relational.mysql_binlog:MysqlBinlogTask",
        config="connectors.relational.mysql_binlog:MysqlBinlogConfig",
        dialects=("mysql", "mariadb"),
        description="log-based CDC: MySQL binlog (AGG-02)",
    ),
    "files": source(
        "connectors.files.source:FileSourceTask",
        config="connectors.files.source:FileSourceConfig",
        description="files from local/FTP/SFTP/object storage, each read once (AGG-05)",
    ),
    "streams.socket": source(
        "connectors.streams.socket_source:SocketSourceTask",
        config="connectors.streams.socket_source:SocketSourceConfig",
        description="TCP/UDP listener: lines, length-prefixed or octet-counted frames, syslog (AGG-04)",
    ),
    "streams.tail": source(
        "connectors.streams.tail:TailSourceTask",
        config="connectors.streams.tail:TailSourceConfig",
        description="follows log files through rotation, multi-line records (AGG-04)",
    ),
    "bigdata.hbase_scan": source(
        "connectors.bigdata.hbase_scan:HBaseScanTask",
        config="connectors.bigdata.hbase_scan:HBaseScanConfig",
        description="HBase table scan (AGG-03)",
    ),
    "bigdata.hive": source(
        "connectors.bigdata.hive:HiveSourceTask",
        config="connectors.bigdata.hive:HiveSourceConfig",
        description="Hive table reads (AGG-03)",
    ),
    "clickhouse": sink(
        "connectors.plugins:_clickhouse",
        config="sinks.clickhouse.task:ClickHouseSinkConfig",
        description="ReplacingMergeTree tables kept current by key",
    ),
    "hdfs": sink(
        "sinks.hdfs.task:HdfsSinkTask",
        config="sinks.hdfs.settings:HdfsSinkSettings",
        description="Avro/Parquet files over WebHDFS",
    ),
    "hbase": sink(
        "sinks.hbase.task:HBaseSinkTask",
        config="sinks.hbase.settings:HBaseSinkSettings",
        description="one HBase table per target",
    ),
    "runner.lean": processor(
        "streams.runner_task:lean_runner_plugin",
        config="streams.runner_task:LeanRunnerConfig",
        description="a pipeline's runner stage: transforms and rules, source topic -> clean / quarantine",
        check="streams.runner_task:check_runner",
    ),
    "runner.faust": processor(
        "streams.runner_task:faust_runner_plugin",
        config="streams.runner_task:LeanRunnerConfig",
        description="a pipeline's runner stage as Faust agents, in a worker process of its own",
        check="streams.runner_task:check_runner",
    ),
    "runner.flink": processor(
        "streams.flink.task:flink_runner_plugin",
        config="streams.flink.task:FlinkRunnerConfig",
        description="a pipeline's runner stage as a Flink job: a cluster (flink_rest_url) or a local mini-cluster",
        check="streams.runner_task:check_runner",
    ),
    "runner.subscription": processor(
        "streams.dataservices.derived_topics:derived_topic_plugin",
        config="streams.dataservices.derived_topics:DerivedTopicConfig",
        description="a data-service subscriber's own topic: its granted fields of the clean topic, masked",
    ),
}

_registered: dict[str, Plugin] = {}  # filled by decorators and by resolving BUILTIN entries
_unavailable: dict[str, str] = {}  # name -> why it could not be loaded


class UnknownPlugin(LookupError):
    pass


def register(plugin: Plugin) -> Plugin:
    _registered[plugin.name] = plugin
    _unavailable.pop(plugin.name, None)
    return plugin


def _plugin_decorator(kind: str, name: str, config_model: type[BaseModel], dialects=None, description: str = ""):
    def decorate(obj):
        factory = obj if not isinstance(obj, type) else (lambda config, ctx: obj(config))
        register(
            Plugin(
                name,
                kind,
                config_model,
                factory,
                tuple(dialects) if dialects else None,
                description or (obj.__doc__ or "").strip().split("\n")[0],
            )
        )
        return obj

    return decorate


def source_plugin(name: str, *, config_model: type[BaseModel], dialects=None, description: str = ""):
    """Decorate a SourceTask class (built as `cls(config)`) or a factory `f(config, ctx)`."""
    return _plugin_decorator("source", name, config_model, dialects, description)


def sink_plugin(name: str, *, config_model: type[BaseModel], description: str = ""):
    """Decorate a SinkTask class (built as `cls(config)`) or a factory `f(config, ctx)`."""
    return _plugin_decorator("sink", name, config_model, None, description)


def processor_plugin(name: str, *, config_model: type[BaseModel], description: str = ""):
    """Decorate a processor's task class (built as `cls(config)`) or a factory `f(config, ctx)`."""
    return _plugin_decorator("processor", name, config_model, None, description)


def _resolve_path(path: str):
    module, _, attr = path.partition(":")
    mod = importlib.import_module(module)
    return getattr(mod, attr) if attr else mod


def _resolve(name: str, entry: Lazy) -> Plugin | None:
    try:
        target = _resolve_path(entry.target)
    except MissingExtra as exc:  # e.g. "happybase is not installed; install it with: pip install 'huiliu[hbase]'"
        _unavailable[name] = str(exc)
        return None
    except ModuleNotFoundError as exc:
        _unavailable[name] = f"module {exc.name} is not installed or not written yet"
        return None
    except Exception as exc:  # a broken plugin must not take the registry down with it
        _unavailable[name] = f"{type(exc).__name__}: {exc}"
        log.warning("connector plugin %s cannot be loaded: %s", name, exc)
        return None
    if name in _registered:  # the module registered itself with a decorator
        plugin = _registered[name]
        if entry.dialects and not plugin.dialects:
            plugin = register(replace(plugin, dialects=entry.dialects))
        return plugin
    if entry.config is None:
        _unavailable[name] = f"{entry.target} does not register {name!r} (use @{entry.kind}_plugin)"
        return None
    model = _resolve_path(entry.config)
    factory = target if not isinstance(target, type) else (lambda config, ctx, cls=target: cls(config))
    check = _resolve_path(entry.check) if entry.check else None
    return register(Plugin(name, entry.kind, model, factory, entry.dialects, entry.description, check=check))


ENTRY_POINT_GROUP = "huiliu.plugins"
_entry_points_loaded = False


def _load_entry_points() -> None:
    """Third-party plugins: installed distributions name them in the `huiliu.plugins` entry-point
    group, `name = package.module` (a module that registers itself with @source_plugin /
    @processor_plugin / @sink_plugin) or `name = package.module:PLUGIN` (a Plugin object). Loaded once, lazily."""
    global _entry_points_loaded
    if _entry_points_loaded:
        return
    _entry_points_loaded = True
    from importlib.metadata import entry_points

    for ep in entry_points(group=ENTRY_POINT_GROUP):
        try:
            loaded = ep.load()
        except Exception as exc:  # a broken third-party plugin must not take the registry down
            _unavailable[ep.name] = f"entry point {ep.value}: {type(exc).__name__}: {exc}"
            log.warning("connector plugin %s (entry point %s) cannot be loaded: %s", ep.name, ep.value, exc)
            continue
        if isinstance(loaded, Plugin):
            register(loaded)
        elif ep.name not in _registered:
            _unavailable[ep.name] = f"entry point {ep.value} did not register a plugin named {ep.name!r}"


def known(name: str) -> bool:
    _load_entry_points()
    return name in _registered or name in BUILTIN


def get(name: str) -> Plugin:
    _load_entry_points()
    if name in _registered:
        return _registered[name]
    entry = BUILTIN.get(name)
    if entry is None:
        raise UnknownPlugin(f"unknown connector plugin {name!r}; known: {', '.join(sorted(BUILTIN))}")
    plugin = _resolve(name, entry)
    if plugin is None:
        raise UnknownPlugin(f"connector plugin {name!r} is not available: {_unavailable[name]}")
    return plugin


def available() -> list[Plugin]:
    """Every plugin that loads; the others are listed by `unavailable()` with the reason."""
    _load_entry_points()
    for name in BUILTIN:
        if name not in _registered:
            try:
                get(name)
            except UnknownPlugin:
                pass
    return sorted(_registered.values(), key=lambda p: p.name)


def unavailable() -> dict[str, str]:
    available()
    return dict(_unavailable)
