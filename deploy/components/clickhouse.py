"""ClickHouse server (Debian's clickhouse-server package) with a config written under the state dir."""

from __future__ import annotations

import logging
import os
import shutil
import subprocess
import sys
import threading
from pathlib import Path
from urllib.parse import unquote, urlsplit
from xml.sax.saxutils import escape

from deploy.components.base import Component, StackError, port_open
from deploy.settings import Settings

_CANDIDATES = ("/usr/sbin/clickhouse-server", "/usr/bin/clickhouse-server")
_INSTALL_HINT = (
    "install ClickHouse (Debian/Ubuntu: `sudo apt-get update && sudo apt-get install -y clickhouse-server "
    "clickhouse-client`, or see https://clickhouse.com/docs/en/install) and run `huiliu stack up` again"
)

CONFIG_XML = """<?xml version="1.0"?>
<!-- Written by `huiliu stack up`; regenerated on every start, edits are lost. -->
<yandex>
    <logger>
        <level>information</level>
        <log>{log}</log>
        <errorlog>{errlog}</errorlog>
        <size>100M</size>
        <count>3</count>
    </logger>
    <listen_host>{host}</listen_host>
    <tcp_port>{tcp_port}</tcp_port>
    <http_port>{http_port}</http_port>
    <max_connections>256</max_connections>
    <keep_alive_timeout>3</keep_alive_timeout>
    <max_concurrent_queries>50</max_concurrent_queries>
    <uncompressed_cache_size>268435456</uncompressed_cache_size>
    <mark_cache_size>268435456</mark_cache_size>
    <path>{path}/</path>
    <tmp_path>{path}/tmp/</tmp_path>
    <user_files_path>{path}/user_files/</user_files_path>
    <format_schema_path>{path}/format_schemas/</format_schema_path>
    <users_config>{users}</users_config>
    <default_profile>default</default_profile>
    <default_database>default</default_database>
    <timezone>UTC</timezone>
    <mlock_executable>false</mlock_executable>
    <builtin_dictionaries_reload_interval>3600</builtin_dictionaries_reload_interval>
    <max_session_timeout>3600</max_session_timeout>
    <default_session_timeout>60</default_session_timeout>
</yandex>
"""

USERS_XML = """<?xml version="1.0"?>
<!-- Written by `huiliu stack up`; regenerated on every start, edits are lost. -->
<yandex>
    <profiles>
        <default>
            <max_memory_usage>4000000000</max_memory_usage>
            <use_uncompressed_cache>0</use_uncompressed_cache>
            <load_balancing>random</load_balancing>
        </default>
        <readonly>
            <readonly>1</readonly>
        </readonly>
    </profiles>
    <users>
        <{user}>
            <password>{password}</password>
            <networks>
                <ip>::1</ip>
                <ip>127.0.0.1</ip>
            </networks>
            <profile>default</profile>
            <quota>default</quota>
        </{user}>
    </users>
    <quotas>
        <default>
            <interval>
                <duration>3600</duration>
                <queries>0</queries>
                <errors>0</errors>
                <result_rows>0</result_rows>
                <read_rows>0</read_rows>
                <execution_time>0</execution_time>
            </interval>
        </default>
    </quotas>
</yandex>
"""


class _ProbeQuiet(logging.Filter):
    """Drops clickhouse_driver's 'Failed to connect' tracebacks, only for threads running a probe."""

    def __init__(self):
        super().__init__()
        self.threads: set[int] = set()

    def filter(self, record: logging.LogRecord) -> bool:
        return threading.get_ident() not in self.threads


_quiet = _ProbeQuiet()
logging.getLogger("clickhouse_driver.connection").addFilter(_quiet)


def find_server() -> str | None:
    found = shutil.which("clickhouse-server")
    if found:
        return found
    for cand in _CANDIDATES:
        if os.access(cand, os.X_OK):
            return cand
    return None


def install_server(log=None) -> str:
    """Install Debian's clickhouse-server when missing and we are root; return the binary path."""
    found = find_server()
    if found:
        return found
    if os.geteuid() != 0 or not shutil.which("apt-get"):
        raise StackError(f"clickhouse: clickhouse-server is not installed; {_INSTALL_HINT}")
    env = dict(os.environ, DEBIAN_FRONTEND="noninteractive")
    install = ["apt-get", "install", "-y", "clickhouse-server", "clickhouse-client"]
    (log or (lambda msg: print(msg, file=sys.stderr)))("clickhouse-server is missing; installing it with apt-get")
    res = subprocess.run(install, env=env, capture_output=True, text=True)
    if res.returncode != 0:
        subprocess.run(["apt-get", "update"], env=env, capture_output=True, text=True)
        res = subprocess.run(install, env=env, capture_output=True, text=True)
    found = find_server()
    if res.returncode != 0 or not found:
        tail = "\n".join((res.stderr or res.stdout).strip().splitlines()[-5:])
        raise StackError(f"clickhouse: `{' '.join(install)}` failed:\n{tail}\n{_INSTALL_HINT}")
    return found


class ClickHouse(Component):
    name = "clickhouse"

    def __init__(self, settings: Settings):
        super().__init__(settings)
        url = urlsplit(settings.clickhouse_url)
        self.host = url.hostname or "127.0.0.1"
        self.port = url.port or 9000
        self.user = unquote(url.username or "default")
        self.password = unquote(url.password or "")
        self.database = (url.path or "/default").strip("/") or "default"

    @property
    def address(self) -> str:
        return f"{self.host}:{self.port}"

    @property
    def config_path(self) -> Path:
        return self.data_dir / "config.xml"

    def listen_address(self) -> tuple[str, int] | None:
        return self.host, self.port

    def command(self) -> list[str]:
        return [find_server() or "clickhouse-server", f"--config-file={self.config_path}"]

    def prepare(self) -> None:
        install_server()
        path = self.data_dir
        for sub in ("", "tmp", "user_files", "format_schemas"):
            (path / sub).mkdir(parents=True, exist_ok=True)
        logs = self.settings.state_dir / "logs"
        logs.mkdir(parents=True, exist_ok=True)
        users = path / "users.xml"
        users.write_text(USERS_XML.format(user=escape(self.user), password=escape(self.password)), encoding="utf-8")
        self.config_path.write_text(
            CONFIG_XML.format(
                log=escape(str(self.log_path)),
                errlog=escape(str(logs / "clickhouse.err.log")),
                host=escape(self.host),
                tcp_port=self.port,
                http_port=self.settings.clickhouse_http_port,
                path=escape(str(path)),
                users=escape(str(users)),
            ),
            encoding="utf-8",
        )

    def client(self, timeout: float = 2.0, database: str = "default"):
        from clickhouse_driver import Client

        return Client(
            host=self.host,
            port=self.port,
            user=self.user,
            password=self.password,
            database=database,
            connect_timeout=timeout,
            send_receive_timeout=max(timeout, 5),
        )

    def probe(self, timeout: float = 2.0) -> str | None:
        # clickhouse_driver logs a traceback for every refused connection; check the port first.
        if not port_open(self.host, self.port, min(timeout, 1.0)):
            raise ConnectionError(f"nothing listens on {self.host}:{self.port}")
        client = self.client(timeout)
        _quiet.threads.add(threading.get_ident())
        try:
            return client.execute("SELECT version()")[0][0]
        finally:
            _quiet.threads.discard(threading.get_ident())
            client.disconnect()

    def after_ready(self) -> None:
        """Create the database named in clickhouse_url if it is not `default`."""
        if self.database != "default":
            client = self.client(5.0)
            try:
                client.execute(f"CREATE DATABASE IF NOT EXISTS `{self.database}`")
            finally:
                client.disconnect()
