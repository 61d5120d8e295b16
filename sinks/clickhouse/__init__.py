from sinks.clickhouse.task import ClickHouseSinkConfig, ClickHouseSinkTask, client_from_url

__all__ = ["ClickHouseSinkConfig", "ClickHouseSinkTask", "client_from_url"]
