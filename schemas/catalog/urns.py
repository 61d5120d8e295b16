"""Stable names of catalogue entities, built on OpenLineage's dataset naming so the events we emit
and the URNs we show line up with other tools:

    hl:dataset:postgres://host:5432/db.schema.table     hl:dataset:mysql://host:3306/db.table
    hl:dataset:kafka://host:9092/topic                   hl:dataset:clickhouse://host:9000/db.table
    hl:dataset:sqlite:///abs/path.db.main.table          hl:dataset:hdfs://namenode:8020/path
    hl:system:postgres://host:5432/db                    hl:system:kafka://host:9092
    hl:job:huiliu/<connector or pipeline stage>

`parse_urn` refuses anything else with `BadUrn` (the API answers 422 with its message).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from urllib.parse import urlparse

KINDS = ("dataset", "system", "job")
SCHEMES = (
    "postgres",
    "mysql",
    "sqlite",
    "kafka",
    "clickhouse",
    "hdfs",
    "file",
    "ftp",
    "sftp",
    "hbase",
    "hive",
    "mssql",
    "oracle",
)
MAX_URN = 1000
JOB_NAMESPACE = "huiliu"
_AUTHORITY = re.compile(r"^[A-Za-z0-9._\-\[\]:]*$")
DEFAULT_PORTS = {"postgres": 5432, "mysql": 3306, "kafka": 9092, "clickhouse": 9000, "hdfs": 8020}
# SQLAlchemy backend name -> OpenLineage scheme
_SQL_SCHEMES = {"postgresql": "postgres", "mysql": "mysql", "mariadb": "mysql", "sqlite": "sqlite", "mssql": "mssql"}


class BadUrn(ValueError):
    pass


@dataclass(frozen=True)
class Urn:
    kind: str  # dataset | system | job
    namespace: str  # scheme://authority (jobs: "huiliu")
    name: str  # "" for systems

    def __str__(self) -> str:
        if self.kind == "system" and not self.name:
            return f"hl:system:{self.namespace}"
        return f"hl:{self.kind}:{self.namespace}/{self.name}"


def dataset_urn(namespace: str, name: str) -> str:
    return str(Urn("dataset", namespace, name))


def system_urn(namespace: str, database: str = "") -> str:
    """A system is a server, or one database of it."""
    return str(Urn("system", namespace, database.lstrip("/") if namespace == "sqlite://" else database))


def job_urn(name: str) -> str:
    return str(Urn("job", JOB_NAMESPACE, name))


def parse_urn(urn: str) -> Urn:
    """The parts of a URN, or BadUrn saying what is wrong (never echoing more than the kind)."""
    if not isinstance(urn, str) or not urn or len(urn) > MAX_URN:
        raise BadUrn(f"a URN is a non-empty string of at most {MAX_URN} characters")
    if any(ord(c) < 32 for c in urn):
        raise BadUrn("a URN has no control characters")
    head, _, rest = urn.partition(":")
    kind, _, body = rest.partition(":")
    if head != "hl" or kind not in KINDS:
        raise BadUrn("a URN starts with hl:dataset:, hl:system: or hl:job:")
    if kind == "job":
        namespace, _, name = body.partition("/")
        if namespace != JOB_NAMESPACE or not name:
            raise BadUrn(f"a job URN is hl:job:{JOB_NAMESPACE}/<name>")
        return Urn("job", namespace, name)
    scheme, sep, after = body.partition("://")
    if not sep or scheme not in SCHEMES:
        raise BadUrn(f"a {kind} URN names a namespace <scheme>://<host:port>, scheme one of {', '.join(SCHEMES)}")
    authority, _, name = after.partition("/")
    if not _AUTHORITY.match(authority):
        raise BadUrn("the namespace's host:port has characters a host name cannot have")
    namespace = f"{scheme}://{authority}"
    if kind == "system":
        return Urn("system", namespace, name)
    if not name:
        raise BadUrn("a dataset URN is hl:dataset:<scheme>://<host:port>/<name>")
    return Urn("dataset", namespace, name)


def relational_namespace(url: str) -> tuple[str, str]:
    """(OpenLineage namespace, database) of a SQLAlchemy URL; SQLite's database is its file path."""
    from sqlalchemy.engine import make_url

    u = make_url(url)
    scheme = _SQL_SCHEMES.get(u.get_backend_name(), u.get_backend_name())
    if scheme == "sqlite":
        return "sqlite://", (u.database or "memory").lstrip("/")
    port = u.port or DEFAULT_PORTS.get(scheme)
    return f"{scheme}://{u.host or 'localhost'}" + (f":{port}" if port else ""), u.database or ""


def relational_urn(url: str, schema: str | None, table: str) -> str:
    namespace, database = relational_namespace(url)
    parts = [p for p in (database, None if schema == database else schema, table) if p]  # MySQL: schema = db
    return dataset_urn(namespace, ".".join(parts))


def host_namespace(scheme: str, address: str) -> str:
    """`kafka://host:port` from a bootstrap list (the first broker) or a URL."""
    first = address.split(",")[0].strip()
    if "://" in first:
        parsed = urlparse(first)
        host, port = parsed.hostname or "localhost", parsed.port
    else:
        host, _, port_text = first.rpartition(":") if ":" in first else (first, "", "")
        port = int(port_text) if port_text.isdigit() else None
    port = port or DEFAULT_PORTS.get(scheme)
    return f"{scheme}://{host}" + (f":{port}" if port else "")


def topic_urn(bootstrap: str, topic: str) -> str:
    return dataset_urn(host_namespace("kafka", bootstrap), topic)
