from sinks.clickhouse.backend import backend_for, client_from_url
from sinks.clickhouse.task import ClickHouseSinkConfig, ClickHouseSinkTask

__all__ = ["ClickHouseSinkConfig", "ClickHouseSinkTask", "backend_for", "client_from_url"]
