"""A ClickHouse client from a `clickhouse://user:password@host:port/database` URL (clickhouse-driver,
native protocol): the one way every layer opens one (sinks, quality metrics, reports, services)."""

from __future__ import annotations

from urllib.parse import urlparse

from clickhouse_driver import Client


def client_from_url(url: str, **kwargs) -> Client:
    parsed = urlparse(url)
    return Client(
        host=parsed.hostname or "127.0.0.1",
        port=parsed.port or 9000,
        user=parsed.username or "default",
        password=parsed.password or "",
        database=(parsed.path or "/default").lstrip("/") or "default",
        **{"connect_timeout": 5, "send_receive_timeout": 60, **kwargs},
    )
