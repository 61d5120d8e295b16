"""The change-log table and row triggers of trigger mode, for PostgreSQL and MariaDB/MySQL.

PostgreSQL: one plpgsql function writes `to_jsonb(OLD)` / `to_jsonb(NEW)` for every table; the key
column names are the trigger's arguments, so the function needs no per-table code. MariaDB has
no row-to-JSON function, so each table gets three triggers whose `JSON_OBJECT(...)` lists the
selected columns as reflected at install time: re-run `install()` after an ALTER TABLE.
Binary columns are base64-encoded there (JSON strings cannot carry raw bytes).
"""

from __future__ import annotations

import hashlib
import re

from sqlalchemy import text
from sqlalchemy.engine import Engine

from connectors.relational.selection import SourceUnit

_IDENT = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,40}$")


def _binary(col) -> bool:
    name = type(col.type).__name__.upper()
    return "BLOB" in name or "BINARY" in name or name in ("BYTEA", "LARGEBINARY")


class ChangeLog:
    def __init__(self, engine: Engine, family: str, table: str, schema: str):
        if not _IDENT.match(table):
            raise ValueError(f"changelog_table: {table!r} must be a plain identifier (letters, digits, _)")
        self.engine, self.family, self.table, self.schema = engine, family, table, schema
        q = '"' if family == "postgresql" else "`"
        self.qualified = f"{q}{schema}{q}.{q}{table}{q}"
        self.function = f'"{schema}"."{table}_capture"'  # PostgreSQL only

    # --- install ---------------------------------------------------------------------------------
    def install(self, units: list[SourceUnit]) -> None:
        with self.engine.begin() as conn:
            if self.family == "postgresql":
                self._install_pg(conn, units)
            else:
                self._install_mysql(conn, units)

    def _install_pg(self, conn, units) -> None:
        conn.exec_driver_sql(
            f"CREATE TABLE IF NOT EXISTS {self.qualified} (id bigserial PRIMARY KEY, table_name text NOT NULL, "
            "op char(1) NOT NULL, pk jsonb, before_image jsonb, after_image jsonb, "
            "changed_at timestamptz NOT NULL DEFAULT clock_timestamp())"
        )
        conn.exec_driver_sql(f"""
CREATE OR REPLACE FUNCTION {self.function}() RETURNS trigger LANGUAGE plpgsql AS $hl$
DECLARE img jsonb;
BEGIN
  IF TG_OP = 'DELETE' THEN img := to_jsonb(OLD); ELSE img := to_jsonb(NEW); END IF;
  INSERT INTO {self.qualified} (table_name, op, pk, before_image, after_image)
  VALUES (TG_TABLE_SCHEMA || '.' || TG_TABLE_NAME,
          CASE TG_OP WHEN 'INSERT' THEN 'c' WHEN 'UPDATE' THEN 'u' ELSE 'd' END,
          (SELECT jsonb_object_agg(k, img -> k) FROM unnest(TG_ARGV) AS k),
          CASE WHEN TG_OP <> 'INSERT' THEN to_jsonb(OLD) END,
          CASE WHEN TG_OP <> 'DELETE' THEN to_jsonb(NEW) END);
  RETURN NULL;
END $hl$""")
        for u in units:
            target = f'"{u.captured.schema}"."{u.captured.table}"'
            args = ", ".join("'" + k.replace("'", "''") + "'" for k in u.key_names)
            conn.exec_driver_sql(f'DROP TRIGGER IF EXISTS "{self.table}_capture" ON {target}')
            conn.exec_driver_sql(
                f'CREATE TRIGGER "{self.table}_capture" AFTER INSERT OR UPDATE OR DELETE ON {target} '
                f"FOR EACH ROW EXECUTE FUNCTION {self.function}({args})"
            )

    def _mysql_trigger_name(self, unit: SourceUnit, event: str) -> str:
        digest = hashlib.blake2b(f"{self.table}|{unit.captured.partition}".encode(), digest_size=4).hexdigest()
        return f"{self.table[:16]}_{unit.captured.table[:30]}_{digest}_{event[0].lower()}"

    def _install_mysql(self, conn, units) -> None:
        conn.exec_driver_sql(
            f"CREATE TABLE IF NOT EXISTS {self.qualified} (id BIGINT AUTO_INCREMENT PRIMARY KEY, "
            "table_name VARCHAR(400) NOT NULL, op CHAR(1) NOT NULL, pk LONGTEXT, before_image LONGTEXT, "
            "after_image LONGTEXT, changed_at DATETIME(6) NOT NULL DEFAULT CURRENT_TIMESTAMP(6)) ENGINE=InnoDB"
        )
        for u in units:

            def obj(alias: str, cols) -> str:
                parts = []
                for c in cols:
                    ref = f"{alias}.`{c.name}`"
                    parts.append(f"'{c.name}', {'TO_BASE64(' + ref + ')' if _binary(c) else ref}")
                return "JSON_OBJECT(" + ", ".join(parts) + ")"

            target = f"`{u.captured.schema}`.`{u.captured.table}`"
            name_lit = "'" + u.captured.partition.replace("'", "''") + "'"
            for event, op, before, after in (
                ("INSERT", "c", None, "NEW"),
                ("UPDATE", "u", "OLD", "NEW"),
                ("DELETE", "d", "OLD", None),
            ):
                trigger = f"`{u.captured.schema}`.`{self._mysql_trigger_name(u, event)}`"
                conn.exec_driver_sql(f"DROP TRIGGER IF EXISTS {trigger}")
                conn.exec_driver_sql(
                    f"CREATE TRIGGER {trigger} AFTER {event} ON {target} FOR EACH ROW "
                    f"INSERT INTO {self.qualified} (table_name, op, pk, before_image, after_image) VALUES "
                    f"({name_lit}, '{op}', {obj(after or before, u.key)}, "
                    f"{obj(before, u.columns) if before else 'NULL'}, {obj(after, u.columns) if after else 'NULL'})"
                )

    # --- inspect / uninstall ---------------------------------------------------------------------
    def triggers(self) -> list[tuple[str, str]]:
        """(table, trigger) pairs that write into this change log."""
        with self.engine.connect() as conn:
            if self.family == "postgresql":
                rows = conn.execute(
                    text(
                        "SELECT tn.nspname || '.' || c.relname, t.tgname FROM pg_trigger t JOIN pg_proc p ON p.oid = t.tgfoid "
                        "JOIN pg_namespace n ON n.oid = p.pronamespace JOIN pg_class c ON c.oid = t.tgrelid "
                        "JOIN pg_namespace tn ON tn.oid = c.relnamespace WHERE p.proname = :fn AND n.nspname = :s"
                    ),
                    {"fn": f"{self.table}_capture", "s": self.schema},
                ).all()
            else:
                rows = conn.execute(
                    text(
                        "SELECT CONCAT(EVENT_OBJECT_SCHEMA, '.', EVENT_OBJECT_TABLE), TRIGGER_NAME "
                        "FROM information_schema.TRIGGERS WHERE ACTION_STATEMENT LIKE :pat"
                    ),
                    {"pat": f"%INSERT INTO {self.qualified} %"},
                ).all()
        return sorted((r[0], r[1]) for r in rows)

    def exists(self) -> bool:
        from sqlalchemy import inspect

        return inspect(self.engine).has_table(self.table, schema=self.schema)

    def uninstall(self) -> None:
        """Drop every trigger writing into the change log, its function and the table itself."""
        with self.engine.begin() as conn:
            if self.family == "postgresql":
                conn.exec_driver_sql(f"DROP FUNCTION IF EXISTS {self.function}() CASCADE")  # drops the triggers
            else:
                for table, trigger in self.triggers():
                    conn.exec_driver_sql(f"DROP TRIGGER IF EXISTS `{table.split('.')[0]}`.`{trigger}`")
            conn.exec_driver_sql(f"DROP TABLE IF EXISTS {self.qualified}")
