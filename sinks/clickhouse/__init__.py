"""The ClickHouse sink. `backend_for` and the sink task load on first use (PEP 562): they import
polars, which a process that only opens a client or publishes a code set (the API) does not need."""

from deploy.clickhouse import client_from_url

__all__ = ["ClickHouseSinkConfig", "ClickHouseSinkTask", "backend_for", "client_from_url"]


def __getattr__(name: str):
    if name == "backend_for":
        from sinks.clickhouse.backend import backend_for

        return backend_for
    if name in ("ClickHouseSinkConfig", "ClickHouseSinkTask"):
        from sinks.clickhouse import task

        return getattr(task, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
