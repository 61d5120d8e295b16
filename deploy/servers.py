"""Prepare PostgreSQL and MariaDB servers for log-based CDC (AGG-02); idempotent, `make test` calls it too.

    huiliu servers prepare          # or: ensure_pg_logical(); ensure_mariadb_binlog()

Needs the database superuser (and, for a restart, the machine's service tools: pg_ctlcluster,
start-stop-daemon); a DBA may instead set the values below by hand.

PostgreSQL: `wal_level=logical` (ALTER SYSTEM) and enough slots/senders; restarted with
pg_ctlcluster only when `SHOW wal_level` is not yet logical. The built-in `pgoutput` plugin is
used, so no package has to be installed.
MariaDB: log_bin + ROW format + FULL row image + FULL row metadata (column names in the binlog)
in /etc/mysql/mariadb.conf.d/99-huiliu.cnf; the directory is included from /etc/mysql/my.cnf
(Debian's layout) if it is not yet. Restarted only when log_bin is OFF or the format is not ROW.
Both servers are shared by other test sessions: nothing restarts when already configured.
"""

from __future__ import annotations

import os
import subprocess
import time
from pathlib import Path

import psycopg
import pymysql

PG_ADMIN = os.environ.get(
    "HUILIU_PG_ADMIN", os.environ.get("HUILIU_TEST_PG_ADMIN", "postgresql://postgres@127.0.0.1:5432/postgres")
)
PG_CLUSTER = os.environ.get("HUILIU_PG_CLUSTER", "15 main").split()  # version and name for pg_ctlcluster
MYSQL = dict(
    host=os.environ.get("HUILIU_MYSQL_HOST", os.environ.get("HUILIU_TEST_MYSQL_HOST", "127.0.0.1")),
    port=int(os.environ.get("HUILIU_MYSQL_PORT", "3306")),
    user=os.environ.get("HUILIU_MYSQL_ADMIN_USER", "root"),
    password=os.environ.get("HUILIU_MYSQL_ADMIN_PASSWORD", ""),
)
MARIADB_CONF_DIR = Path("/etc/mysql/mariadb.conf.d")
MARIADB_CONF = MARIADB_CONF_DIR / "99-huiliu.cnf"
MY_CNF = Path("/etc/mysql/my.cnf")
MARIADB_SETTINGS = """# written by `huiliu servers prepare`: binlog for log-based CDC (huiliu AGG-02)
[mysqld]
server_id = 1
log_bin = mysql-bin
binlog_format = ROW
binlog_row_image = FULL
binlog_row_metadata = FULL
expire_logs_days = 3
"""


def _wait(check, what: str, timeout: float) -> None:
    deadline = time.time() + timeout
    last: Exception | None = None
    while time.time() < deadline:
        try:
            if check():
                return
        except Exception as exc:  # the server is still starting or stopping
            last = exc
        time.sleep(0.5)
    raise TimeoutError(f"{what} within {timeout:.0f}s (last error: {last})")


def _pg_show(name: str) -> str:
    with psycopg.connect(PG_ADMIN, autocommit=True, connect_timeout=5) as conn:
        return conn.execute(f"SHOW {name}").fetchone()[0]


def ensure_pg_logical(timeout: float = 120.0) -> bool:
    """Make PostgreSQL decode logically; returns True when it had to restart the server."""
    with psycopg.connect(PG_ADMIN, autocommit=True, connect_timeout=10) as conn:
        level = conn.execute("SHOW wal_level").fetchone()[0]
        for name in ("max_replication_slots", "max_wal_senders"):
            if int(conn.execute(f"SHOW {name}").fetchone()[0]) < 10:
                conn.execute(f"ALTER SYSTEM SET {name} = 10")
        if level == "logical":
            return False
        conn.execute("ALTER SYSTEM SET wal_level = logical")
    subprocess.run(["pg_ctlcluster", "--skip-systemctl-redirect", *PG_CLUSTER, "restart"], check=True, timeout=timeout)
    _wait(lambda: _pg_show("wal_level") == "logical", "PostgreSQL did not come back with wal_level=logical", timeout)
    return True


def _mysql_vars() -> dict[str, str]:
    conn = pymysql.connect(**MYSQL, connect_timeout=5)
    try:
        with conn.cursor() as cur:
            cur.execute(
                "SHOW GLOBAL VARIABLES WHERE Variable_name IN "
                "('log_bin', 'binlog_format', 'binlog_row_image', 'binlog_row_metadata', 'server_id')"
            )
            return {k.lower(): v for k, v in cur.fetchall()}
    finally:
        conn.close()


def _write_mariadb_config() -> None:
    MARIADB_CONF_DIR.mkdir(parents=True, exist_ok=True)
    if not MARIADB_CONF.exists() or MARIADB_CONF.read_text() != MARIADB_SETTINGS:
        MARIADB_CONF.write_text(MARIADB_SETTINGS)
    include = f"!includedir {MARIADB_CONF_DIR}/"
    if MY_CNF.exists() and include not in MY_CNF.read_text():
        with MY_CNF.open("a") as f:  # Debian ships this line; a minimal my.cnf may not
            f.write(f"\n{include}\n")


def _mariadb_pid() -> int | None:
    pid_file = Path("/run/mysqld/mysqld.pid")
    try:
        pid = int(pid_file.read_text().strip())
        os.kill(pid, 0)
        return pid
    except (OSError, ValueError):
        return None


def restart_mariadb(timeout: float = 120.0) -> None:
    """Clean SHUTDOWN over SQL, wait for the process to go, start it the way the machine does."""
    pid = _mariadb_pid()
    conn = pymysql.connect(**MYSQL, connect_timeout=5)
    try:
        with conn.cursor() as cur:
            cur.execute("SHUTDOWN")
    finally:
        conn.close()
    if pid is not None:
        _wait(lambda: not Path(f"/proc/{pid}").exists(), "mariadbd did not stop", timeout)
    subprocess.run(
        ["start-stop-daemon", "--start", "--oknodo", "--background", "--exec", "/usr/sbin/mariadbd"],
        check=True,
        timeout=30,
    )
    _wait(lambda: bool(_mysql_vars()), "MariaDB did not answer after the restart", timeout)


def ensure_mariadb_binlog(timeout: float = 120.0) -> bool:
    """Turn the binlog on in ROW format; returns True when it had to restart the server."""
    _write_mariadb_config()
    v = _mysql_vars()
    if v.get("log_bin") == "ON" and v.get("binlog_format") == "ROW":
        if v.get("binlog_row_metadata") != "FULL" or v.get("binlog_row_image") != "FULL":
            conn = pymysql.connect(**MYSQL, connect_timeout=5)  # both are dynamic: no restart needed
            try:
                with conn.cursor() as cur:
                    cur.execute("SET GLOBAL binlog_row_metadata = FULL, binlog_row_image = FULL")
            finally:
                conn.close()
        return False
    restart_mariadb(timeout)
    v = _mysql_vars()
    if v.get("log_bin") != "ON" or v.get("binlog_format") != "ROW":
        raise RuntimeError(
            f"MariaDB restarted but binlog is still not configured ({v}); "
            f"is {MARIADB_CONF} read by the server (see {MY_CNF})?"
        )
    return True


CHROMIUM = Path("/usr/bin/chromium")
BROWSER_PACKAGES = ("chromium", "fonts-noto-cjk")


def ensure_browser() -> bool:
    """Debian's Chromium and the CJK fonts the console's browser tests drive (Playwright never
    downloads a browser of its own); installed with apt-get when /usr/bin/chromium is missing.
    Returns whether it installed them."""
    if CHROMIUM.exists():
        return False
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    subprocess.run(["apt-get", "update", "-q"], check=True, env=env)
    subprocess.run(["apt-get", "install", "-y", "-q", *BROWSER_PACKAGES], check=True, env=env)
    return True


def prepare() -> dict[str, bool]:
    """Both servers and the console tests' browser; returns which of them had to restart (install)."""
    return {"postgresql": ensure_pg_logical(), "mariadb": ensure_mariadb_binlog(), "chromium": ensure_browser()}
