"""Services the stack does not run but reports on: PostgreSQL (demo source) and Redis."""

from __future__ import annotations

from deploy.components.base import Component


class Postgres(Component):
    """The demo source database named by `demo_source_url` (any SQLAlchemy URL)."""

    name = "postgres"
    managed = False

    @property
    def address(self) -> str:
        from sqlalchemy.engine import make_url

        try:
            return make_url(self.settings.demo_source_url).render_as_string(hide_password=True)
        except Exception:  # noqa: BLE001
            return self.settings.demo_source_url

    def probe(self, timeout: float = 2.0) -> str | None:
        from sqlalchemy import create_engine, text
        from sqlalchemy.engine import make_url
        from sqlalchemy.pool import NullPool

        url = make_url(self.settings.demo_source_url)
        connect_args = {}
        if url.get_backend_name() == "postgresql":
            connect_args["connect_timeout"] = max(1, int(timeout))
        elif url.get_backend_name() == "mysql":
            connect_args["connect_timeout"] = max(1, int(timeout))
        engine = create_engine(url, connect_args=connect_args, poolclass=NullPool)
        try:
            with engine.connect() as conn:
                conn.execute(text("SELECT 1"))
                info = engine.dialect.server_version_info
            name = engine.dialect.name
            if info:
                return f"{name} " + ".".join(str(p) for p in info)
            return name
        finally:
            engine.dispose()


class Redis(Component):
    name = "redis"
    managed = False

    @property
    def address(self) -> str:
        from redis.connection import parse_url

        try:
            p = parse_url(self.settings.redis_url)
            return f"{p.get('host', '127.0.0.1')}:{p.get('port', 6379)}/{p.get('db', 0)}"
        except Exception:  # noqa: BLE001
            return self.settings.redis_url

    def probe(self, timeout: float = 2.0) -> str | None:
        import redis

        client = redis.Redis.from_url(self.settings.redis_url, socket_connect_timeout=timeout, socket_timeout=timeout)
        try:
            return client.info("server").get("redis_version")
        finally:
            client.close()
