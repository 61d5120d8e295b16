"""HDFS to HDFS file copy over WebHDFS (two clusters, or two paths of one).

Each file is streamed (never held in memory) into `<name>._COPYING_` next to its target and
renamed when complete, as `hadoop fs -cp` does, so a reader never sees half a file. A target
that already exists with the same length (and the same HDFS checksum, when both sides report
one) is skipped, which makes a re-run after a failure cheap and idempotent. HDFS to a Kafka topic
is the file source with `store.kind: hdfs`.
"""

from __future__ import annotations

import fnmatch
import logging
import posixpath
from dataclasses import dataclass, field

from pydantic import BaseModel, ConfigDict, Field

from schemas.optional import optional_import

log = logging.getLogger(__name__)
CHUNK = 1 << 20


class HdfsCopyConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")

    source_url: str = Field(description="WebHDFS URL of the source NameNode")
    source_root: str
    pattern: str = "*"
    recursive: bool = True
    target_url: str | None = Field(None, description="WebHDFS URL of the target; default the source cluster")
    target_root: str
    user: str | None = None
    overwrite: str = Field("if_different", pattern="^(if_different|always|never)$")


@dataclass
class CopyReport:
    copied: list[str] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)
    bytes: int = 0


def _checksum(client, path: str) -> str | None:
    try:
        return client.checksum(path)["bytes"]
    except Exception:  # some gateways (HttpFS, older versions) do not serve GETFILECHECKSUM
        return None


def _files(client, root: str, pattern: str, recursive: bool):
    for name, st in client.list(root, status=True):
        path = posixpath.join(root, name)
        if st["type"] == "DIRECTORY" and recursive:
            yield from _files(client, path, pattern, recursive)
        elif st["type"] == "FILE" and fnmatch.fnmatch(name, pattern):
            yield path, st["length"]


def copy_tree(config: HdfsCopyConfig) -> CopyReport:
    InsecureClient = optional_import("hdfs", extra="hdfs").InsecureClient

    src = InsecureClient(config.source_url, user=config.user)
    dst = InsecureClient(config.target_url, user=config.user) if config.target_url else src
    report = CopyReport()
    for path, length in _files(src, config.source_root, config.pattern, config.recursive):
        target = posixpath.join(config.target_root, posixpath.relpath(path, config.source_root))
        existing = dst.status(target, strict=False)
        if existing is not None and config.overwrite != "always":
            same = existing["length"] == length and _checksum(src, path) == _checksum(dst, target)
            if same or config.overwrite == "never":
                report.skipped.append(path)
                continue
        tmp = target + "._COPYING_"
        with src.read(path, chunk_size=CHUNK) as chunks:
            dst.write(tmp, data=chunks, overwrite=True)
        if existing is not None:
            dst.delete(target)
        dst.rename(tmp, target)
        report.copied.append(path)
        report.bytes += length
        log.info("copied %s -> %s (%d bytes)", path, target, length)
    return report
