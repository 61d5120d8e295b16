"""Harvest what a file source reads and what an HDFS sink writes, as catalogue datasets.

A file connector's dataset is its directory and pattern (OpenLineage naming: `file://host` +
path, `hdfs://namenode:port` + path, `sftp://host:port` + path); its fields are the declared
columns, or, when none are declared, the ones inferred from the files' headers, which the
connector's topic carries (each field's source name is its `doc`). Statistics (file count, bytes,
newest change) are read from a local directory listing when the caller hands one.

    harvest_file_source(store, table_name, system_name, declared, inferred, listing=None) -> Harvest
    harvest_hdfs_path(namenode, path, fields, listing=None) -> Harvest
"""

from __future__ import annotations

import socket
from typing import Any

from schemas.catalog.model import DatasetInfo, FieldInfo, Harvest, SystemInfo
from schemas.catalog.urns import dataset_urn, system_urn

PORTS = {"ftp": 21, "sftp": 22}


def file_namespace(kind: str, host: str | None = None, port: int | None = None, url: str | None = None) -> str:
    """`file://<this host>` for local files, `hdfs://namenode:port`, `ftp://host:port`, `sftp://host:port`."""
    if kind == "local":
        return f"file://{socket.gethostname()}"
    if kind == "hdfs":
        from urllib.parse import urlparse

        parsed = urlparse(url or "")
        return f"hdfs://{parsed.hostname or host or 'localhost'}:{parsed.port or port or 8020}"
    return f"{kind}://{host or 'localhost'}:{port or PORTS.get(kind, 21)}"


def file_urn(kind: str, root: str, pattern: str, **where: Any) -> str:
    path = "/" + root.strip("/")
    return dataset_urn(file_namespace(kind, **where), path.lstrip("/") + ("/" + pattern if pattern != "*" else ""))


def declared_fields(columns: list[dict[str, Any]]) -> list[FieldInfo]:
    out = []
    for i, c in enumerate(columns):
        typ = c.get("type") or "string"
        if typ == "decimal" and c.get("precision"):
            typ = f"decimal({c['precision']},{c.get('scale') or 0})"
        out.append(
            FieldInfo(
                name=str(c["name"]),
                type=typ,
                position=i + 1,
                nullable=bool(c.get("nullable", True)),
                key=bool(c.get("key", False)),
                comment=c.get("source") if c.get("source") and c.get("source") != c["name"] else None,
            )
        )
    return out


def inferred_fields(topic_fields: list[FieldInfo]) -> list[FieldInfo]:
    """The file's own column names back from its topic's fields (a renamed field keeps it as `doc`)."""
    return [
        FieldInfo(name=f.comment or f.name, type=f.type, position=f.position, nullable=f.nullable, key=f.key)
        for f in topic_fields
    ]


def _stats(listing: list[Any] | None) -> dict[str, Any]:
    if listing is None:
        return {}
    return {
        "files": len(listing),
        "bytes": sum(int(f.size) for f in listing),
        "last_modified": max((float(f.mtime) for f in listing), default=None),
    }


def harvest_file_source(
    store: dict[str, Any],
    table: str,
    system_name: str,
    declared: list[dict[str, Any]],
    inferred: list[FieldInfo] | None = None,
    listing: list[Any] | None = None,
    file_format: str | None = None,
) -> Harvest:
    kind = store.get("kind") or "local"
    where = {"host": store.get("host"), "port": store.get("port"), "url": store.get("url")}
    namespace = file_namespace(kind, **where)
    fields = declared_fields(declared) if declared else inferred_fields(inferred or [])
    properties = {
        "kind_detail": "files",
        "format": file_format,
        "pattern": store.get("pattern") or "*",
        "columns_from": "declared" if declared else ("inferred" if inferred else None),
        "table": table,
        **_stats(listing),
    }
    dataset = DatasetInfo(
        urn=file_urn(kind, store.get("root") or "/", store.get("pattern") or "*", **where),
        name="/" + (store.get("root") or "/").strip("/"),
        kind="files",
        fields=fields,
        properties=properties,
    )
    system = SystemInfo(
        urn=system_urn(namespace), name=system_name, kind=kind, properties={"namespace": namespace, "store": kind}
    )
    return Harvest(system=system, datasets=[dataset])


def harvest_hdfs_path(
    namenode_url: str, path: str, fields: list[FieldInfo], listing: list[Any] | None = None
) -> Harvest:
    """An HDFS sink's directory: the fields it writes (its topic's row) and, when listed, files and sizes."""
    namespace = file_namespace("hdfs", url=namenode_url)
    dataset = DatasetInfo(
        urn=dataset_urn(namespace, path.strip("/")),
        name="/" + path.strip("/"),
        kind="files",
        fields=fields,
        properties={"kind_detail": "hdfs_sink", **_stats(listing)},
    )
    system = SystemInfo(urn=system_urn(namespace), name="hdfs", kind="hdfs", properties={"namespace": namespace})
    return Harvest(system=system, datasets=[dataset])
