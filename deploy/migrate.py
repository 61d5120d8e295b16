"""Control-DB migrations (Alembic): one history in deploy/migrations, for SQLite and PostgreSQL.

    huiliu db upgrade | current | history        # `huiliu api` and `huiliu stack up` upgrade too

`upgrade(url)` brings a control DB to the newest revision: a new DB gets every table; a DB made
by release 0.1.0 (tables from metadata.create_all, no alembic_version) is upgraded in place —
the baseline creates only the tables it lacks, so nothing it holds is lost. Processes that start
at once take a lock (PostgreSQL advisory lock; a lock file beside a SQLite file), so exactly one
migrates and the others find the work done. `ensure_current(engine)` does it once per process.
"""

from __future__ import annotations

import contextlib
import fcntl
import logging
import threading
from collections.abc import Iterator
from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import create_engine, text
from sqlalchemy.engine import Connection, Engine

log = logging.getLogger(__name__)
SCRIPTS = Path(__file__).with_name("migrations")
_LOCK_KEY = 0x48554C4955  # "HUILU": the advisory lock every Huiliu process migrates under
_done: set[str] = set()
_done_lock = threading.Lock()


def _config(conn: Connection, target_metadata=None) -> Config:
    cfg = Config()
    cfg.set_main_option("script_location", str(SCRIPTS))
    cfg.attributes["connection"] = conn
    cfg.attributes["target_metadata"] = target_metadata
    return cfg


def head() -> str:
    return ScriptDirectory(str(SCRIPTS)).get_current_head()


def current(engine: Engine) -> str | None:
    with engine.connect() as conn:
        return MigrationContext.configure(conn).get_current_revision()


@contextlib.contextmanager
def _exclusive(engine: Engine, conn: Connection) -> Iterator[None]:
    if engine.dialect.name == "postgresql":
        conn.execute(text("SELECT pg_advisory_xact_lock(:k)"), {"k": _LOCK_KEY})  # released at commit
        yield
        return
    database = engine.url.database
    if engine.dialect.name != "sqlite" or not database or database == ":memory:":
        yield
        return
    with open(f"{database}.migrate-lock", "a") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        yield


def upgrade(engine: Engine, revision: str = "head") -> tuple[str | None, str | None]:
    """Upgrade to `revision`; returns (before, after)."""
    with engine.begin() as conn, _exclusive(engine, conn):
        before = MigrationContext.configure(conn).get_current_revision()
        command.upgrade(_config(conn), revision)
        after = MigrationContext.configure(conn).get_current_revision()
    if before != after:
        log.info("control DB migrated from %s to %s", before or "nothing", after)
    return before, after


def ensure_current(engine: Engine) -> None:
    """Once per process and DB: every store calls it before its first query."""
    key = str(engine.url)
    if key in _done:
        return
    with _done_lock:
        if key not in _done:
            upgrade(engine)
            _done.add(key)


def upgrade_url(url: str, revision: str = "head") -> tuple[str | None, str | None]:
    engine = create_engine(url, future=True)
    try:
        return upgrade(engine, revision)
    finally:
        engine.dispose()


def revision(engine: Engine, message: str) -> str:
    """Write a new migration from the difference between the DB (at head) and the table definitions."""
    from deploy.migrations.tables import control_metadata

    upgrade(engine)
    with engine.begin() as conn:
        script = command.revision(_config(conn, control_metadata()), message=message, autogenerate=True)
    return script.path


def differences(engine: Engine) -> list:
    """What the table definitions have that the migrated DB lacks (or the other way round)."""
    from alembic.autogenerate import compare_metadata

    from deploy.migrations.tables import control_metadata, tracked

    with engine.connect() as conn:
        context = MigrationContext.configure(conn, opts={"compare_type": True, "include_name": tracked})
        return compare_metadata(context, control_metadata())


def history() -> list[tuple[str, str]]:
    """(revision, first line of its message), oldest first."""
    scripts = ScriptDirectory(str(SCRIPTS))
    return [(s.revision, (s.doc or "").splitlines()[0]) for s in reversed(list(scripts.walk_revisions()))]
