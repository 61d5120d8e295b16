"""Schema change in the running stream (issue 15): what changed in a captured table, whether the
stream can follow it, and what an operator decided about the changes it could not follow.

A capture task that sees a table's layout change (a pgoutput relation message, a binlog ALTER, a
reflection between rounds) re-reflects the table and hands old and new layout to
`Evolution.apply`, which
- names each change: added / dropped / widened / narrowed / changed (another type family);
- follows a compatible one (added column, widened type, dropped non-key column) when the schema
  registry accepts the new envelope under the subject's compatibility: the runtime registers it,
  later events carry the new layout, sinks evolve their tables from the new schema;
- holds an incompatible one (narrowed or changed type, dropped key column, or one the registry
  refuses): the task stops with `SchemaChangeHeld` naming table, column and both types, before
  any event of the new layout, so no stored offset passes the change (trigger and diff modes
  catch it per table and go on with the others: connectors.held_tables). Table `schema_changes`
  keeps it `held` until `POST /connectors/{name}/schema-changes/{id}/accept` (mode `new_version`:
  registered as a new subject version under NONE compatibility; `new_topic`: the table's events go
  to a new topic `<topic>_v<n>`); the restarted task then follows it.
Each change posts a message (category `schema`) to the connector's tenant and records a new
catalogue version of the source table; alert kind `schema_change` reports them.
"""

from __future__ import annotations

import hashlib
import json
import logging
from dataclasses import asdict, dataclass
from typing import Any

import sqlalchemy.types as sa

from connectors.base import CapturedTable
from connectors.schema_change_store import NotHeld, SchemaChangeStore, UnknownSchemaChange, store_for
from connectors.task_runner import ConfigInvalid
from deploy.control import engine_for
from deploy.messages import post_message
from schemas.naming import key_subject, value_subject
from schemas.sqltypes import ColumnSpec

log = logging.getLogger(__name__)
__all__ = [
    "ColumnChange",
    "Evolution",
    "NotHeld",
    "SchemaChangeHeld",
    "UnknownSchemaChange",
    "accept_change",
    "diff_columns",
]


# --- what changed ------------------------------------------------------------------------------
@dataclass(frozen=True)
class ColumnChange:
    kind: str  # added | dropped | widened | narrowed | changed
    column: str
    old_type: str | None
    new_type: str | None
    key: bool = False

    @property
    def compatible(self) -> bool:
        return self.kind in ("added", "widened") or (self.kind == "dropped" and not self.key)

    def describe(self) -> str:
        if self.kind == "added":
            return f"column {self.column} added ({self.new_type})"
        if self.kind == "dropped":
            return f"{'key ' if self.key else ''}column {self.column} dropped (was {self.old_type})"
        return f"column {self.column} {self.kind}: {self.old_type} -> {self.new_type}"


def type_text(column: ColumnSpec) -> str:
    try:
        text = str(column.sql_type)
    except Exception:  # a dialect type the generic compiler cannot print
        text = type(column.sql_type).__name__
    return text + ("" if column.nullable else " NOT NULL")


_INT_RANK = {"TINYINT": 1, "SMALLINT": 2, "SMALLINTEGER": 2, "MEDIUMINT": 3, "INTEGER": 4, "INT": 4, "BIGINT": 5}


def _rank(t: Any) -> tuple[str, Any] | None:
    """(family, size) of a type where sizes compare; None when only equality can be judged."""
    name = type(t).__name__.upper()
    if isinstance(t, sa.Boolean):
        return None
    if isinstance(t, sa.Integer):
        return "int", 5 if isinstance(t, sa.BigInteger) else _INT_RANK.get(name, 4)
    if isinstance(t, sa.Float) or name in ("REAL", "DOUBLE", "DOUBLE_PRECISION"):
        double = name in ("DOUBLE", "DOUBLE_PRECISION") or (getattr(t, "precision", None) or 0) > 24
        return "float", 2 if double else 1
    if isinstance(t, sa.Numeric):
        p, s = t.precision or 1000, t.scale or 0
        return "numeric", (p - s, s)
    if isinstance(t, (sa.String, sa.Text)) and not isinstance(t, sa.Enum):
        return "string", getattr(t, "length", None) or 10**12
    return None


def _compare_types(old: ColumnSpec, new: ColumnSpec) -> str | None:
    """None (same), 'widened', 'narrowed' or 'changed'."""
    a, b = _rank(old.sql_type), _rank(new.sql_type)
    if a is not None and b is not None and a[0] == b[0]:
        if a[0] == "numeric":
            (ai, as_), (bi, bs) = a[1], b[1]
            kind = None if (ai, as_) == (bi, bs) else "widened" if bi >= ai and bs >= as_ else "narrowed"
        else:
            kind = None if a[1] == b[1] else "widened" if b[1] > a[1] else "narrowed"
    elif type_text(ColumnSpec(old.name, old.sql_type)) == type_text(ColumnSpec(new.name, new.sql_type)):
        kind = None
    else:
        kind = "changed"
    if kind in (None, "widened") and old.nullable != new.nullable:
        return "narrowed" if old.nullable else "widened"  # NOT NULL added refuses the old rows' nulls
    return kind


def diff_columns(old: tuple[ColumnSpec, ...], new: tuple[ColumnSpec, ...]) -> list[ColumnChange]:
    before = {c.name: c for c in old}
    after = {c.name: c for c in new}
    out = [ColumnChange("dropped", c.name, type_text(c), None, c.primary_key) for c in old if c.name not in after]
    for c in new:
        was = before.get(c.name)
        if was is None:
            out.append(ColumnChange("added", c.name, None, type_text(c), c.primary_key))
            continue
        kind = _compare_types(was, c)
        if kind is not None:
            out.append(ColumnChange(kind, c.name, type_text(was), type_text(c), was.primary_key or c.primary_key))
    return out


def table_label(table: CapturedTable) -> str:
    return f"{table.schema}.{table.table}" if table.schema else f"{table.database}.{table.table}"


def fingerprint(label: str, changes: list[ColumnChange]) -> str:
    text = json.dumps([label, [asdict(c) for c in changes]], sort_keys=True)
    return hashlib.sha256(text.encode()).hexdigest()[:64]


class SchemaChangeHeld(ConfigInvalid):
    """The capture stops at an incompatible change until an operator accepts it (a retry cannot help)."""


# --- following a change in a running capture ---------------------------------------------------
class Evolution:
    """One per capture task. `attach` gives it the control DB and tenant (the worker does; without
    it, compatible changes are still followed but nothing is recorded and incompatible ones stop
    the task all the same); the runtime binds itself (`bind_runtime`) to register schemas."""

    def __init__(self, connector: str, source_url: str | None = None):
        self.connector = connector
        self.source_url = source_url
        self.store: SchemaChangeStore | None = None
        self.control_db_url: str | None = None
        self.tenant: str | None = None
        self.runtime = None

    def attach(self, control_db_url: str, tenant: str | None) -> None:
        self.control_db_url, self.tenant = control_db_url, tenant
        self.store = SchemaChangeStore(control_db_url)

    def bind_runtime(self, runtime) -> None:
        self.runtime = runtime
        if self.store is None and getattr(runtime, "control_db_url", None):
            self.store = SchemaChangeStore(runtime.control_db_url)
            self.control_db_url = runtime.control_db_url
        if self.store is not None:  # accepted `new_topic` changes keep their topic after a restart
            for label, topic in self.store.new_topics(self.connector).items():
                runtime.topic_overrides[label] = topic

    def resume(self, table: CapturedTable) -> None:
        """At task start: a change still held stops the task again; one accepted since is followed
        now (the reflected layout is the changed one), before any event of the table."""
        if self.store is None:
            return
        label = table_label(table)
        for change in reversed(self.store.list(self.connector)):
            if change["table"] != label:
                continue
            text = "; ".join(ColumnChange(**c).describe() for c in change["changes"])
            if change["status"] == "held":
                raise self._held(label, text, change["id"], change.get("reason"))
            if change["status"] == "accepted" and not change.get("topic"):
                self._follow_accepted(change, table, table)
                self._tell(
                    "info",
                    f"capture of {label} resumed",
                    self._body(label, text, change["id"], None) + f"\nAccepted as {change['mode']}.",
                )
            return  # the latest decision about the table is the one that counts

    def apply(self, old: CapturedTable, new: CapturedTable) -> CapturedTable:
        """The table to capture from now on (`new`), or SchemaChangeHeld. `old` stays in use when
        nothing that matters changed."""
        changes = diff_columns(old.columns, new.columns)
        if not changes:
            return old if [c.name for c in old.columns] == [c.name for c in new.columns] else new
        label = table_label(new)
        digest = fingerprint(label, changes)
        known = self.store.find(self.connector, label, digest) if self.store else None
        text = "; ".join(c.describe() for c in changes)
        if known and known["status"] == "accepted":
            self._follow_accepted(known, old, new)
            log.info("%s: %s follows the accepted change %s: %s", self.connector, label, known["id"], text)
            return new
        if known and known["status"] == "held":
            raise self._held(label, text, known["id"], known.get("reason"))
        reason = None
        bad = [c for c in changes if not c.compatible]
        if bad:
            reason = "incompatible: " + "; ".join(c.describe() for c in bad)
        else:
            reason = self._register(new)  # the registry's compatibility decides
        if reason is None:
            if known is None:
                change_id = self._record(label, digest, changes, True, "applied", None, new)
                self._tell("info", f"schema change in {label}: {text}", self._body(label, text, change_id, None))
                self._catalogue(new)
            log.info("%s: %s changed, following it: %s", self.connector, label, text)
            return new
        change_id = self._record(label, digest, changes, False, "held", reason, new)
        self._tell(
            "error",
            f"capture of {label} stopped: incompatible schema change",
            self._body(label, text, change_id, reason)
            + f"\nAccept it: POST /connectors/{self.connector}/schema-changes/{change_id}/accept "
            '{"mode": "new_version" | "new_topic"}',
        )
        self._catalogue(new)
        raise self._held(label, text, change_id, reason)

    # -- pieces
    def _held(self, label: str, text: str, change_id: int | None, reason: str | None) -> SchemaChangeHeld:
        why = f"; {reason}" if reason and not reason.startswith("incompatible") else ""  # e.g. the registry's
        accept = (
            f" (schema change {change_id}; accept it: POST /connectors/{self.connector}/schema-changes/"
            f"{change_id}/accept)"
            if change_id is not None
            else ""
        )
        return SchemaChangeHeld(f"capture of {label} stopped at an incompatible schema change: {text}{why}{accept}")

    def _body(self, label: str, text: str, change_id: int | None, reason: str | None) -> str:
        """English, then Chinese (column names and types are the source's own)."""
        lines = [f"Connector {self.connector}, table {label}: {text}."]
        if change_id is not None:
            lines.append(f"Schema change id {change_id}.")
        if reason:
            lines.append(f"Reason: {reason}")
        zh = f"连接器 {self.connector} 的表 {label} 结构变更：{text}。"
        if reason:
            zh += "变更不兼容，该表采集已暂停，需操作员确认（接受为新版本或新主题）后继续。"
        return "\n".join(lines) + "\n" + zh

    def _topic(self, table: CapturedTable) -> str | None:
        return self.runtime.topic_of(table) if self.runtime is not None else None

    def _register(self, table: CapturedTable) -> str | None:
        """Register the new layout now (the runtime would at the first event): None, or why the
        registry refused it."""
        if self.runtime is None:
            return None
        try:
            self.runtime.prepare_table(table)
        except Exception as exc:  # SchemaRegistryError 409: incompatible under the subject's level
            if "409" in str(exc) or "ncompatible" in str(exc):
                return f"the schema registry refused the new schema of topic {self._topic(table)}: {exc}"
            raise
        return None

    def _follow_accepted(self, change: dict, old: CapturedTable, new: CapturedTable) -> None:
        if self.runtime is None:
            return
        if change["mode"] == "new_topic":
            topic = change.get("topic") or f"{self.runtime.topic_of(old)}_v{change['id']}"
            self.runtime.topic_overrides[table_label(new)] = topic
            if self.store is not None and not change.get("topic"):
                self.store.set(change["id"], topic=topic)
            self.runtime.prepare_table(new)
            return
        registry = self.runtime.codec.registry
        topic = self.runtime.topic_of(new)
        subjects = [value_subject(topic), key_subject(topic)]
        levels = {}
        for subject in subjects:
            try:
                levels[subject] = registry.get_compatibility(subject)
            except Exception:  # no level of its own: the global one applies
                levels[subject] = None
            registry.set_compatibility(subject_name=subject, level="NONE")
        try:
            self.runtime.prepare_table(new)
        finally:
            for subject, level in levels.items():  # later changes are checked again as before
                try:
                    if level is None:
                        registry.delete_config(subject)
                    else:
                        registry.set_compatibility(subject_name=subject, level=level)
                except Exception as exc:
                    log.warning("cannot restore the compatibility of %s: %s", subject, exc)
        if self.store is not None and not change.get("topic"):
            self.store.set(change["id"], topic=topic)

    def _record(self, label, digest, changes, compatible, status, reason, table) -> int | None:
        if self.store is None:
            return None
        return self.store.add(
            self.tenant or "",
            self.connector,
            label,
            digest,
            [asdict(c) for c in changes],
            compatible=int(compatible),
            status=status,
            reason=reason,
            topic=self._topic(table) if status == "applied" else None,  # a held one has no topic yet
        )

    def _tell(self, level: str, subject: str, body: str) -> None:
        if self.control_db_url is None:
            return
        try:
            post_message(self.control_db_url, "schema", level, subject, body, tenant=self.tenant)
        except Exception as exc:  # the message is a courtesy; the change itself is recorded
            log.warning("cannot post the schema change message: %s", exc)

    def _catalogue(self, table: CapturedTable) -> None:
        """A new version of the source table in the catalogue (it keeps one only when the shape changed)."""
        if self.control_db_url is None or not self.source_url:
            return
        try:
            from sqlalchemy import create_engine

            from schemas.catalog.relational import harvest_relational
            from schemas.catalog.store import CatalogStore, scope_of

            source = create_engine(self.source_url)
            try:
                schemas = [table.schema] if table.schema else None
                include = [f"{table.schema or table.database}.{table.table}"]
                harvest = harvest_relational(source, self.source_url, table.system, schemas, include)
            finally:
                source.dispose()
            CatalogStore(self.store.engine if self.store else engine_for(self.control_db_url)).record(
                harvest, scope_of(self.tenant)
            )
        except Exception as exc:  # the catalogue catches up at the next harvest
            log.warning("cannot record the catalogue version of %s: %s", table_label(table), exc)


def accept_change(control_db_url: str, connectors, name: str, change_id: int, mode: str, by: str) -> dict[str, Any]:
    """An operator accepts a held change (`mode`: new_version | new_topic); the connector is
    signalled, so its workers restart the task, which follows the change at start (Evolution.resume).
    ValueError: bad mode; NotHeld: not held (any more); UnknownSchemaChange: no such change of that connector."""
    change = store_for(control_db_url).accept(name, change_id, mode, by)
    connectors.signal(name)
    return change
