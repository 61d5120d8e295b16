"""WebHDFS operations of the sink: write a temp file, commit it by rename, list and read what is committed.

Every failure of the NameNode/DataNode (refused, timeout, HTTP error) becomes a SinkError, so
the runtime retries. Commit is idempotent: file names are deterministic, and an existing final
file means an earlier attempt already committed the same rows.
"""

from __future__ import annotations

import functools
import posixpath

import requests

from schemas.optional import optional_import
from sinks.base import SinkError

_hdfs = optional_import("hdfs", extra="hdfs")
HdfsError, InsecureClient = _hdfs.HdfsError, _hdfs.InsecureClient

SEP = "+"  # never valid in a Kafka topic name, so names parse back unambiguously
INPROGRESS = ".inprogress"


def file_name(topic: str, partition: int, first: int, last: int, ext: str) -> str:
    return f"{topic}{SEP}{partition}{SEP}{first:020d}{SEP}{last:020d}.{ext}"


def parse_name(name: str) -> tuple[str, int, int, int] | None:
    """(topic, partition, first offset, last offset) of a committed/temp file name, else None."""
    stem = name.removesuffix(INPROGRESS).rsplit(".", 1)[0]
    parts = stem.rsplit(SEP, 3)
    if len(parts) != 4:
        return None
    try:
        return parts[0], int(parts[1]), int(parts[2]), int(parts[3])
    except ValueError:
        return None


def _translated(fn):
    @functools.wraps(fn)
    def wrapper(self, *args, **kwargs):
        try:
            return fn(self, *args, **kwargs)
        except SinkError:
            raise
        except (HdfsError, requests.RequestException, OSError) as exc:
            self._made_dirs.clear()  # a directory may have vanished with the failure; check again
            raise SinkError(f"WebHDFS {fn.__name__} failed at {self.url}: {exc}") from exc

    return wrapper


class HdfsStore:
    def __init__(self, url: str, user: str, root: str, timeout_s: float) -> None:
        self.url = url
        self.root = root
        self.client = InsecureClient(url, user=user, timeout=timeout_s)
        self._made_dirs: set[str] = set()

    def final_dir(self, table: str, day: str) -> str:
        return posixpath.join(self.root, table, f"dt={day}")

    def temp_dir(self, table: str, day: str) -> str:
        return posixpath.join(self.root, "_tmp", table, f"dt={day}")

    @_translated
    def list_names(self, path: str) -> list[str]:
        """File names directly under path ([] when it does not exist)."""
        if self.client.status(path, strict=False) is None:
            return []
        return self.client.list(path)

    @_translated
    def read(self, path: str) -> bytes:
        with self.client.read(path) as reader:
            return reader.read()

    @_translated
    def delete(self, path: str) -> None:
        self.client.delete(path)

    @_translated
    def write_temp(self, temp_path: str, data: bytes) -> None:
        self._makedirs(posixpath.dirname(temp_path))
        # overwrite: a temp left by a crashed attempt for the same offsets is simply replaced.
        self.client.write(temp_path, data=data, overwrite=True)

    @_translated
    def commit(self, temp_path: str, final_path: str) -> bool:
        """Renames temp -> final. False (temp deleted) when final already exists: a replay."""
        self._makedirs(posixpath.dirname(final_path))
        if self.client.status(final_path, strict=False) is None:
            try:
                self.client.rename(temp_path, final_path)
                return True
            except HdfsError:
                # HDFS rename never overwrites: if final appeared meanwhile, this was a replay.
                if self.client.status(final_path, strict=False) is None:
                    raise
        self.client.delete(temp_path)
        return False

    def _makedirs(self, path: str) -> None:
        if path not in self._made_dirs:
            self.client.makedirs(path)
            self._made_dirs.add(path)

    def close(self) -> None:
        session = getattr(self.client, "_session", None)
        if session is not None:
            session.close()
