"""Trigger-based capture (AGG-02, mode 3): PostgreSQL and MariaDB/MySQL.

`install()` creates a change-log table and AFTER INSERT/UPDATE/DELETE row triggers on the
selected tables (see trigger_ddl); `uninstall()` removes both. Polls read the change log in id
order and emit c/u/d with before/after images converted back to the columns' Python types; the
offset is the last change-log id read, and `committed()` deletes the log up to the id the runtime
stored, so the log only holds what is not yet durable in Kafka.

Ids are handed out when a row is written, not when its transaction commits: a gap in the ids
may be a transaction still running (its rows appear later, with smaller ids than rows already
seen) or one that rolled back (a permanent hole). A poll therefore stops at a gap until every
transaction that was running when the gap was first seen has ended — PostgreSQL: the snapshot
xmin passed the xmax noted then; MariaDB: no InnoDB transaction started before that moment is
left — and only then steps over it. No time-out, so a slow transaction is never skipped.

Schema change (issue 15, connectors.schema_changes): the tables are reflected again before a poll
at most every `schema_check_seconds`, and at once when a PostgreSQL log row names a column the
capture does not know (its `to_jsonb` image has every column the table had at that moment): the
events before that row are published first, then the change is followed or holds that table
(connectors.held_tables): the other tables go on; the held table's rows stay in the log (left out
of the purge) and the offset says from which id (`parked`); once the change is accepted the
restarted task publishes them in log order before anything newer of that table. Only when every
table is held does the task stop (the offset before that row). MariaDB's triggers list their columns: a followed change re-installs
them (with `install`), so rows written between the ALTER and that have no value for a new column.
"""

from __future__ import annotations

import logging
import time
from datetime import datetime
from typing import Any

from pydantic import Field
from sqlalchemy import bindparam, create_engine, inspect, text

from connectors.base import ChangeEvent, RelationalSourceSettings, SourceBatch, SourceTask
from connectors.held_tables import HeldTables
from connectors.plugins import source_plugin
from connectors.relational.rowcodec import decode_row, loads
from connectors.relational.selection import TableSelection, require_dialect, select_tables
from connectors.relational.trigger_ddl import ChangeLog
from connectors.schema_changes import Evolution

log = logging.getLogger(__name__)

SUPPORTED_DATABASES = ("postgresql", "mysql")


class TriggerSourceConfig(RelationalSourceSettings):
    url: str = Field(description="SQLAlchemy URL of the source database (postgresql or mysql/mariadb)")
    system: str = Field(description="source system name, second part of the topic name")
    tables: TableSelection = Field(default_factory=TableSelection, description="tables to capture")
    changelog_table: str = Field("huiliu_changelog", description="name of the change-log table the triggers fill")
    changelog_schema: str | None = Field(
        None, description="schema/database of the change log; default: the connection's"
    )
    install: bool = Field(True, description="install (or refresh) the change log and triggers when the task starts")
    batch_size: int = Field(1000, gt=0, description="change-log rows read per poll")
    schema_check_seconds: float = Field(5.0, ge=0, description="how often the tables are reflected for schema changes")


def _ts_ms(value: Any) -> int:
    return int(value.timestamp() * 1000) if isinstance(value, datetime) else 0


@source_plugin(
    "relational.trigger",
    config_model=TriggerSourceConfig,
    dialects=("postgresql", "mysql", "mariadb"),
    description="change-log table + row triggers (AGG-02)",
)
class TriggerSourceTask(SourceTask):
    def __init__(self, config: TriggerSourceConfig):
        self.config = config
        self.name = config.name
        self.engine = create_engine(config.url, future=True, pool_pre_ping=True)
        self.family = require_dialect(self.engine, "trigger", SUPPORTED_DATABASES, field="url")
        schema = config.changelog_schema or inspect(self.engine).default_schema_name
        self.changelog = ChangeLog(self.engine, self.family, config.changelog_table, schema)
        self.units = select_tables(
            self.engine,
            config.tables,
            config.system,
            config.unknown_types,
            skip=(config.changelog_table,),
            need_key="trigger",
        )
        self._use(self.units)
        self.evolution = Evolution(config.name, config.url)
        self.held = HeldTables(self.evolution)
        # table -> first change-log id not yet published for it: a held table's rows stay in the
        # log (not purged) while the others' are read past them; kept in the offset across restarts
        self.parked: dict[str, int] = {}
        self._checked = time.monotonic()
        self.partition = f"changelog:{schema}.{config.changelog_table}"
        self.last_id = 0
        self._gap: tuple[int, Any] | None = None  # (first missing id, marker taken when it was seen)

    def _use(self, units) -> None:
        self.units = units
        self.by_name = {u.captured.partition: u for u in units}
        self.columns = {p: [(c.name, c.type) for c in u.columns] for p, u in self.by_name.items()}
        self.known = {p: {c.name for c in u.source.c} for p, u in self.by_name.items()}  # every column, kept or not

    def _check_schema(self, force: bool = False) -> None:
        """Reflect the tables again; follow a change (SchemaChangeHeld stops the task before reading on)."""
        if not force and time.monotonic() - self._checked < self.config.schema_check_seconds:
            return
        c = self.config
        fresh = {
            u.captured.partition: u
            for u in select_tables(
                self.engine, c.tables, c.system, c.unknown_types, skip=(c.changelog_table,), need_key="trigger"
            )
        }
        self._checked = time.monotonic()
        units, changed = [], False
        for unit in self.units:
            p = unit.captured.partition
            new = fresh.get(p)
            if new is not None and p not in self.held:
                followed = self.held.apply(unit, new)
                changed |= followed is not unit
                if p in self.held:  # held now: nothing of it after the last id read went out
                    self.parked.setdefault(p, self.last_id + 1)
                unit = followed
            units.append(unit)
        self.held.check(units)
        if changed:
            self._use(units)
            if self.family != "postgresql" and c.install:  # the MariaDB triggers name their columns
                self.install()
        for partition, unit in fresh.items():  # columns left out by the selection are known too
            if partition in self.known:
                self.known[partition] = {col.name for col in unit.source.c}

    def _unknown_column(self, table_name: str, before_text, after_text) -> bool:
        if self.family != "postgresql":
            return False
        img = loads(after_text if after_text is not None else before_text)
        return isinstance(img, dict) and not img.keys() <= self.known[table_name]

    # --- installation ----------------------------------------------------------------------------
    def install(self) -> None:
        self.changelog.install(self.units)

    def uninstall(self) -> None:
        self.changelog.uninstall()

    # --- capture ---------------------------------------------------------------------------------
    def start(self, offsets: dict[str, dict[str, Any]]) -> None:
        stored = offsets.get(self.partition) or {}
        self.last_id = int(stored.get("changelog_id", 0))
        self.parked = {p: int(i) for p, i in (stored.get("parked") or {}).items() if p in self.by_name}
        self.held.resume(self.units)  # a table whose change is still held stays out (parked)
        for unit in self.units:
            if unit.captured.partition in self.held:
                self.parked.setdefault(unit.captured.partition, self.last_id + 1)
        if self.config.install:
            self.install()
        issued = self._last_issued_id()
        if self.last_id > issued:  # the log was dropped and re-created: its ids started again
            log.warning(
                "%s: stored changelog_id %d is past the log's last id %d; reading it from the start",
                self.partition,
                self.last_id,
                issued,
            )
            self.last_id = 0
            self.parked = {}

    def _last_issued_id(self) -> int:
        with self.engine.connect() as conn:
            if self.family == "postgresql":
                seq = f"{self.changelog.schema}.{self.changelog.table}_id_seq"
                return conn.execute(
                    text("SELECT coalesce(pg_sequence_last_value(CAST(:s AS regclass)), 0)"), {"s": seq}
                ).scalar()
            return (
                conn.execute(
                    text(
                        "SELECT coalesce(AUTO_INCREMENT, 1) - 1 FROM information_schema.TABLES "
                        "WHERE TABLE_SCHEMA = :s AND TABLE_NAME = :t"
                    ),
                    {"s": self.changelog.schema, "t": self.changelog.table},
                ).scalar()
                or 0
            )

    def _read_sql(self) -> str:
        cast = "::text" if self.family == "postgresql" else ""
        return (
            f"SELECT id, table_name, op, before_image{cast}, after_image{cast}, changed_at "
            f"FROM {self.changelog.qualified} WHERE id > :last ORDER BY id LIMIT :n"
        )

    def _marker(self, conn) -> Any:
        if self.family == "postgresql":
            return conn.execute(text("SELECT txid_snapshot_xmax(txid_current_snapshot())")).scalar()
        return str(conn.execute(text("SELECT NOW(6)")).scalar())

    def _writers_done(self, conn, marker: Any) -> bool:
        """Have all transactions running when `marker` was taken ended?"""
        if self.family == "postgresql":
            return bool(
                conn.execute(text("SELECT txid_snapshot_xmin(txid_current_snapshot()) >= :m"), {"m": marker}).scalar()
            )
        return not conn.execute(
            text(
                "SELECT COUNT(*) FROM information_schema.INNODB_TRX WHERE trx_started <= :m "
                "AND trx_mysql_thread_id <> CONNECTION_ID()"
            ),
            {"m": marker},
        ).scalar()

    def _may_pass_gap(self, conn, missing: int) -> bool:
        if self._gap is None or self._gap[0] != missing:
            self._gap = (missing, self._marker(conn))
            return False
        return self._writers_done(conn, self._gap[1])

    def _offset(self) -> dict[str, Any]:
        return {"changelog_id": self.last_id, **({"parked": dict(self.parked)} if self.parked else {})}

    def _catch_up(self) -> SourceBatch | None:
        """A parked table no longer held (its change accepted, the task restarted): its rows up to
        the last id read, in log order, before anything newer of it."""
        for table_name, first in list(self.parked.items()):
            if table_name in self.held:
                continue
            cast = "::text" if self.family == "postgresql" else ""
            with self.engine.connect() as conn:
                rows = conn.execute(
                    text(
                        f"SELECT id, op, before_image{cast}, after_image{cast}, changed_at "
                        f"FROM {self.changelog.qualified} WHERE table_name = :t AND id >= :first AND id <= :last "
                        "ORDER BY id LIMIT :n"
                    ),
                    {"t": table_name, "first": first, "last": self.last_id, "n": self.config.batch_size},
                ).all()
            if not rows:  # caught up: the next batch's offset no longer names it
                del self.parked[table_name]
                continue
            unit, cols = self.by_name[table_name], self.columns[table_name]
            events = [
                ChangeEvent(
                    unit.captured,
                    op,
                    decode_row(cols, loads(b)) if b is not None else None,
                    decode_row(cols, loads(a)) if a is not None else None,
                    _ts_ms(changed_at),
                    {"changelog_id": cid},
                    cid,
                )
                for cid, op, b, a, changed_at in rows
            ]
            self.parked[table_name] = rows[-1][0] + 1
            return SourceBatch(events, {self.partition: self._offset()})
        return None

    def poll(self) -> SourceBatch:
        self._check_schema()
        caught_up = self._catch_up()
        if caught_up is not None:
            return caught_up
        with self.engine.connect() as conn:
            rows = conn.execute(text(self._read_sql()), {"last": self.last_id, "n": self.config.batch_size}).all()
            accepted = []
            expected = self.last_id + 1
            for row in rows:
                if row[0] != expected and not self._may_pass_gap(conn, expected):
                    break  # an id below this row may still be committed later: wait
                accepted.append(row)
                expected = row[0] + 1
            conn.rollback()  # end the read transaction so the next poll sees newer commits
        if not accepted:
            return SourceBatch()
        events, last = [], self.last_id
        for cid, table_name, op, before_text, after_text, changed_at in accepted:
            unit = self.by_name.get(table_name)
            if unit is None or table_name in self.parked:  # not selected (purged) or held (kept)
                last = cid
                continue
            if self._unknown_column(table_name, before_text, after_text):
                if events:  # publish what came before the change; this row is read again next poll
                    break
                self._check_schema(force=True)
                if table_name in self.parked:  # held at this row: the others go on
                    last = cid
                    continue
                unit = self.by_name[table_name]
            cols = self.columns[table_name]
            before = decode_row(cols, loads(before_text)) if before_text is not None else None
            after = decode_row(cols, loads(after_text)) if after_text is not None else None
            events.append(ChangeEvent(unit.captured, op, before, after, _ts_ms(changed_at), {"changelog_id": cid}, cid))
            last = cid
        if last == self.last_id:
            return SourceBatch()
        self.last_id = last
        return SourceBatch(events, {self.partition: self._offset()})

    def committed(self, offsets: dict[str, dict[str, Any]]) -> None:
        """The runtime stored the offset: the log up to it is durable in Kafka and can go."""
        stored = offsets.get(self.partition) or {}
        upto = stored.get("changelog_id")
        if upto is None:
            return
        parked = sorted(stored.get("parked") or {})  # held tables' rows wait in the log
        keep = " AND table_name NOT IN :parked" if parked else ""
        stmt = text(f"DELETE FROM {self.changelog.qualified} WHERE id <= :upto{keep}")
        if parked:
            stmt = stmt.bindparams(bindparam("parked", expanding=True))
        with self.engine.begin() as conn:
            conn.execute(stmt, {"upto": upto, **({"parked": parked} if parked else {})})

    def close(self) -> None:
        self.engine.dispose()
