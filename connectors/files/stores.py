"""Where files come from: a local directory, FTP, SFTP or HDFS (WebHDFS), behind one small interface.

`list()` returns the files matching the glob with size and mtime (the tracking identity);
`open()` returns a seekable binary stream. Remote files are spooled into a temporary file first
(disk, not memory): readers may seek (encoding sniffing, xlsx zip) and the remote connection is
not held open while rows trickle through the runtime.
"""

from __future__ import annotations

import fnmatch
import posixpath
import tempfile
from dataclasses import dataclass
from datetime import UTC
from pathlib import Path
from typing import BinaryIO

from pydantic import BaseModel, ConfigDict, Field, SecretStr

from schemas.optional import optional_import

CHUNK = 1 << 20


@dataclass(frozen=True)
class FileInfo:
    path: str  # as the store names it (absolute within the store)
    size: int
    mtime: float


class StoreConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")

    kind: str = Field("local", pattern="^(local|ftp|sftp|hdfs)$")
    root: str = Field(description="directory to watch (local path, FTP/SFTP/HDFS path)")
    pattern: str = Field("*", description="glob of file names under root; `**/` recurses (local only)")
    host: str = "127.0.0.1"
    port: int | None = None
    user: str | None = None
    password: SecretStr | None = None
    key_file: str | None = Field(None, description="sftp: private key file")
    url: str | None = Field(None, description="hdfs: WebHDFS URL, e.g. http://namenode:9870")
    timeout: float = 30.0


def _spool(copy) -> BinaryIO:
    tmp = tempfile.TemporaryFile(prefix="huiliu-file-")
    copy(tmp)
    tmp.seek(0)
    return tmp


class LocalStore:
    """Files below `root`; a match resolving outside it (a symlink, `..` in the pattern) is
    neither listed nor opened."""

    def __init__(self, cfg: StoreConfig):
        self.root, self.pattern = Path(cfg.root), cfg.pattern

    def _inside(self, p: Path) -> bool:
        return p.resolve().is_relative_to(self.root.resolve())

    def list(self) -> list[FileInfo]:
        out = []
        for p in self.root.glob(self.pattern):
            if p.is_file() and self._inside(p):
                st = p.stat()
                out.append(FileInfo(str(p), st.st_size, st.st_mtime))
        return sorted(out, key=lambda f: (f.mtime, f.path))

    def open(self, info: FileInfo) -> BinaryIO:
        if not self._inside(Path(info.path)):
            raise PermissionError("the file resolves outside the store root")
        return open(info.path, "rb", buffering=CHUNK)

    def exists(self, path: str) -> bool:
        p = Path(path)
        return p.is_file() and self._inside(p)

    def close(self) -> None:
        pass


class FtpStore:
    def __init__(self, cfg: StoreConfig):
        self.cfg = cfg
        self.ftp = None

    def _conn(self):
        import ftplib

        if self.ftp is not None:
            try:
                self.ftp.voidcmd("NOOP")
                return self.ftp
            except ftplib.all_errors:
                self.ftp = None
        ftp = ftplib.FTP(timeout=self.cfg.timeout, encoding="utf-8")
        ftp.connect(self.cfg.host, self.cfg.port or 21)
        ftp.login(self.cfg.user or "anonymous", self.cfg.password.get_secret_value() if self.cfg.password else "")
        self.ftp = ftp
        return ftp

    def list(self) -> list[FileInfo]:
        from datetime import datetime

        ftp, out = self._conn(), []
        # MLSD gives size and modify time in one round trip (RFC 3659).
        for name, facts in ftp.mlsd(self.cfg.root, facts=["type", "size", "modify"]):
            if facts.get("type") == "file" and fnmatch.fnmatch(name, self.cfg.pattern):
                mtime = datetime.strptime(facts["modify"][:14], "%Y%m%d%H%M%S").replace(tzinfo=UTC)
                out.append(FileInfo(posixpath.join(self.cfg.root, name), int(facts["size"]), mtime.timestamp()))
        return sorted(out, key=lambda f: (f.mtime, f.path))

    def open(self, info: FileInfo) -> BinaryIO:
        ftp = self._conn()
        return _spool(lambda tmp: ftp.retrbinary(f"RETR {info.path}", tmp.write, CHUNK))

    def exists(self, path: str) -> bool:
        import ftplib

        directory, name = posixpath.split(path)
        try:
            return any(n == name for n, _ in self._conn().mlsd(directory, facts=["type"]))
        except ftplib.all_errors:
            return False

    def close(self) -> None:
        if self.ftp is not None:
            try:
                self.ftp.quit()
            except Exception:
                self.ftp.close()
            self.ftp = None


class SftpStore:
    def __init__(self, cfg: StoreConfig):
        self.cfg = cfg
        self.transport = self.sftp = None

    def _conn(self):
        paramiko = optional_import("paramiko", extra="ftp")

        if self.sftp is not None and self.transport.is_active():
            return self.sftp
        t = paramiko.Transport((self.cfg.host, self.cfg.port or 22))
        t.banner_timeout = self.cfg.timeout
        key = paramiko.PKey.from_path(self.cfg.key_file) if self.cfg.key_file else None
        t.connect(
            username=self.cfg.user,
            password=self.cfg.password.get_secret_value() if self.cfg.password else None,
            pkey=key,
        )
        self.transport, self.sftp = t, paramiko.SFTPClient.from_transport(t)
        return self.sftp

    def list(self) -> list[FileInfo]:
        import stat

        sftp = self._conn()
        out = [
            FileInfo(posixpath.join(self.cfg.root, a.filename), a.st_size, float(a.st_mtime))
            for a in sftp.listdir_attr(self.cfg.root)
            if stat.S_ISREG(a.st_mode or 0) and fnmatch.fnmatch(a.filename, self.cfg.pattern)
        ]
        return sorted(out, key=lambda f: (f.mtime, f.path))

    def open(self, info: FileInfo) -> BinaryIO:
        sftp = self._conn()
        return _spool(lambda tmp: sftp.getfo(info.path, tmp))

    def exists(self, path: str) -> bool:
        try:
            self._conn().stat(path)
            return True
        except OSError:
            return False

    def close(self) -> None:
        if self.transport is not None:
            self.transport.close()
        self.transport = self.sftp = None


class HdfsStore:
    def __init__(self, cfg: StoreConfig):
        InsecureClient = optional_import("hdfs", extra="hdfs").InsecureClient

        if not cfg.url:
            raise ValueError("hdfs store needs `url` (WebHDFS, e.g. http://namenode:9870)")
        self.cfg = cfg
        self.client = InsecureClient(cfg.url, user=cfg.user, timeout=cfg.timeout)

    def list(self) -> list[FileInfo]:
        out = [
            FileInfo(posixpath.join(self.cfg.root, name), st["length"], st["modificationTime"] / 1000)
            for name, st in self.client.list(self.cfg.root, status=True)
            if st["type"] == "FILE" and fnmatch.fnmatch(name, self.cfg.pattern)
        ]
        return sorted(out, key=lambda f: (f.mtime, f.path))

    def open(self, info: FileInfo) -> BinaryIO:
        def copy(tmp):
            with self.client.read(info.path, chunk_size=CHUNK) as chunks:
                for chunk in chunks:
                    tmp.write(chunk)

        return _spool(copy)

    def exists(self, path: str) -> bool:
        return self.client.status(path, strict=False) is not None

    def close(self) -> None:
        pass


def make_store(cfg: StoreConfig):
    return {"local": LocalStore, "ftp": FtpStore, "sftp": SftpStore, "hdfs": HdfsStore}[cfg.kind](cfg)
