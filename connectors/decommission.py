"""Decommissioning log-CDC connectors: what they leave on the source server, and finding it.

PostgreSQL (`relational.pg_logical`): the connector owns a logical replication slot and a
publication (`huiliu_<name>` unless configured). A slot nobody reads makes the server keep every
WAL segment since the slot's restart LSN, until its disk fills; so deleting such a connector drops
both (`decommission`), and `replication_slots` reports every `huiliu_*` slot with the WAL it holds.
The stored offset (an LSN of the dropped slot) is cleared with it: a connector of that name created
again starts with a fresh snapshot instead of failing on "slot is gone". REPLICA IDENTITY FULL on
the captured tables is left as it is (other consumers may rely on it).

MySQL/MariaDB (`relational.mysql_binlog`): a binlog reader holds nothing on the server (no slot; the
server purges binlogs by its own expiry, `binlog_expire_logs_seconds`), so there is nothing to
drop; the stored (file, pos) offset is kept, as for every other connector.

"Inactive" means: no running connector reads the slot. The slot is `active` in pg_replication_slots
while a connector's replication stream is open, but a running connector between reconnections
shows it inactive too; what matters is whether a connector whose target state is RUNNING owns the
slot (a paused, stopped or deleted connector's slot keeps WAL growing).
"""

from __future__ import annotations

import logging
import time
from typing import Any

import psycopg
from psycopg import sql
from sqlalchemy import delete
from sqlalchemy.engine import make_url

from connectors.document import parse
from connectors.relational.pg_replication import drop_slot
from connectors.secrets import scrub
from deploy.control import engine_for, source_offsets

log = logging.getLogger(__name__)

LOG_CDC = {"relational.pg_logical": "postgresql", "relational.mysql_binlog": "mysql"}
SLOT_PREFIX = "huiliu_"
BINLOG_NOTE = (
    "nothing to drop on a MySQL/MariaDB server: a binlog reader holds no server-side state "
    "(the server purges binlogs by its own expiry, binlog_expire_logs_seconds)"
)


class DecommissionFailed(Exception):
    """The server-side objects could not be dropped; the message names them and the reason."""


def is_log_cdc(plugin: str) -> bool:
    return plugin in LOG_CDC


def _pg_target(name: str, config: dict[str, Any], settings) -> tuple[str, str, str, str]:
    """(conninfo, server label, slot, publication) of a pg_logical connector's config."""
    spec, errors = parse(name, config, settings)
    if spec is None:
        raise DecommissionFailed(f"the stored config of {name} does not parse: {errors[0].field}: {errors[0].message}")
    cfg = spec.plugin_config
    url = make_url(cfg.url)
    conninfo = url.set(drivername="postgresql").render_as_string(hide_password=False)
    server = f"{url.host or 'localhost'}:{url.port or 5432}/{url.database or ''}"
    return conninfo, server, cfg.slot_name or cfg.ident(), cfg.publication or cfg.ident()


def decommission(name: str, plugin: str, config: dict[str, Any], settings, active_wait: float = 10.0) -> dict[str, Any]:
    """Drop what the connector holds on its source server. Idempotent: objects already gone count as
    done. Raises DecommissionFailed (message scrubbed of the config's secrets) when the server cannot
    be reached or the slot stays in use for `active_wait` seconds."""
    kind = LOG_CDC.get(plugin)
    if kind == "mysql":
        return {"kind": "mysql", "dropped": [], "note": BINLOG_NOTE}
    if kind != "postgresql":
        return {"kind": None, "dropped": [], "note": "this connector holds nothing on a source server"}
    conninfo, server, slot, publication = _pg_target(name, config, settings)
    dropped: list[str] = []
    retained = None
    try:
        with psycopg.connect(conninfo, autocommit=True, connect_timeout=10) as conn:
            row = conn.execute(
                "SELECT pg_wal_lsn_diff(pg_current_wal_lsn(), restart_lsn)::bigint "
                "FROM pg_replication_slots WHERE slot_name = %s",
                (slot,),
            ).fetchone()
            try:
                if row is not None and drop_slot(conn, slot, active_wait):
                    retained = row[0]
                    dropped.append(f"replication slot {slot}")
            except psycopg.errors.ObjectInUse:  # its stream's walsender did not let go of it
                holder = conn.execute(
                    "SELECT active_pid FROM pg_replication_slots WHERE slot_name = %s", (slot,)
                ).fetchone()
                raise DecommissionFailed(
                    f"replication slot {slot} on {server} is in use (process {holder and holder[0]}); "
                    "stop its reader first"
                ) from None
            if conn.execute("SELECT 1 FROM pg_publication WHERE pubname = %s", (publication,)).fetchone():
                conn.execute(sql.SQL("DROP PUBLICATION IF EXISTS {}").format(sql.Identifier(publication)))
                dropped.append(f"publication {publication}")
    except DecommissionFailed:
        raise
    except psycopg.Error as exc:
        reason = scrub(str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__, config)
        raise DecommissionFailed(
            f"cannot drop replication slot {slot} and publication {publication} on {server}: {reason}"
        ) from exc
    partition = f"pg_logical:{slot}"
    with engine_for(settings.resolved_control_db_url).begin() as conn:
        cleared = conn.execute(
            delete(source_offsets).where(source_offsets.c.connector == name, source_offsets.c.partition == partition)
        ).rowcount
    log.info("decommissioned %s on %s: %s", name, server, ", ".join(dropped) or "nothing left to drop")
    return {
        "kind": "postgresql",
        "server": server,
        "slot": slot,
        "publication": publication,
        "dropped": dropped,
        "retained_bytes_freed": retained,
        "offsets_cleared": [partition] if cleared else [],
    }


def describe(result: dict[str, Any]) -> str:
    """One line for a response header and the audit entry."""
    if result.get("kind") == "postgresql":
        what = ", ".join(result["dropped"]) or "nothing (already gone)"
        return f"dropped on {result['server']}: {what}"
    return result.get("note", "")


def replication_slots(store, settings, running: set[str] | None = None) -> list[dict[str, Any]]:
    """Every `huiliu_*` slot on the PostgreSQL servers of the stored pg_logical connectors: slot,
    server, retained_bytes (WAL the server keeps for it), connector (None: no connector owns it),
    inactive (no running connector reads it). `running`: names of connectors whose target state is
    RUNNING (default: read from the store). Servers that cannot be reached are reported with `error`."""
    servers: dict[str, tuple[str, list[dict[str, Any]]]] = {}
    owners: dict[tuple[str, str], str] = {}
    records = [r for r in store.all() if r.plugin == "relational.pg_logical"]
    if running is None:
        running = {r.name for r in records if r.target_state == "RUNNING"}
    for record in records:
        try:
            conninfo, server, slot, _ = _pg_target(record.name, record.config, settings)
        except DecommissionFailed:
            continue
        servers.setdefault(server, (conninfo, []))
        owners[(server, slot)] = record.name
    found: list[dict[str, Any]] = []
    for server, (conninfo, _) in sorted(servers.items()):
        try:
            with psycopg.connect(conninfo, autocommit=True, connect_timeout=3) as conn:
                rows = conn.execute(
                    "SELECT slot_name, active, pg_wal_lsn_diff(pg_current_wal_lsn(), restart_lsn)::bigint "
                    "FROM pg_replication_slots WHERE slot_name LIKE %s ORDER BY slot_name",
                    (SLOT_PREFIX.replace("_", r"\_") + "%",),
                ).fetchall()
        except psycopg.Error as exc:
            found.append({"server": server, "error": f"cannot connect to {server}: {type(exc).__name__}"})
            continue
        for slot, active, retained in rows:
            owner = owners.get((server, slot))
            found.append(
                {
                    "server": server,
                    "slot": slot,
                    "connector": owner,
                    "retained_bytes": int(retained or 0),
                    "inactive": not active and owner not in running,
                }
            )
    return found


def slot_clash(store, settings, name: str, config: dict[str, Any]) -> str | None:
    """Why a pg_logical connector may not use its slot: another connector on the same server has a
    slot or publication of that name (slots are per server; names such as `people-1`, `people.1` and
    `People_1` share the default `huiliu_people_1`, and a start would take over, even drop, the other's
    slot). None when it is free. The other connector is not named (it may be another tenant's)."""
    try:
        _, server, slot, publication = _pg_target(name, config, settings)
    except DecommissionFailed:
        return None
    host = server.split("/", 1)[0]
    for record in store.all():
        if record.name == name or record.plugin != "relational.pg_logical":
            continue
        try:
            _, other_server, other_slot, other_pub = _pg_target(record.name, record.config, settings)
        except DecommissionFailed:
            continue
        if other_server.split("/", 1)[0] != host:
            continue
        if other_slot == slot:
            return (
                f"replication slot {slot} on {host} is another connector's (names differing only in case, "
                "'.' or '-' share the default slot); set slot_name and publication"
            )
        if other_server == server and other_pub == publication:
            return f"publication {publication} on {server} is another connector's; set publication"
    return None


def stop_tasks(store, leases, record, wait: float = 20.0) -> None:
    """Set the connector STOPPED and wait until no worker runs a task of it (a running log-CDC task
    would create its slot again). Redis away: the workers' last stored states decide."""
    from connectors.leases import task_key

    name = record.name
    if not store.signal(name, "STOPPED"):
        raise DecommissionFailed(f"connector {name} is gone")
    current = store.get(name)
    version = current.version if current else record.version + 1
    keys = [task_key(name, t) for t in range(record.task_count)]
    deadline = time.monotonic() + wait
    while True:
        rows = store.task_statuses(name)
        try:
            owners: dict[str, Any] | None = leases.owners(keys)
        except Exception:
            owners = None
        running = []
        for t, key in enumerate(keys):
            row = rows.get(t, {})
            owner = owners.get(key) if owners is not None else row.get("worker_id")
            if owner is not None and not (row.get("state") == "STOPPED" and row.get("version") == version):
                running.append(t)
        if not running:
            return
        if time.monotonic() > deadline:
            raise DecommissionFailed(f"its task did not stop within {wait:.0f}s (is the worker busy?)")
        time.sleep(0.3)


def retire(store, leases, settings, record, wait: float = 20.0) -> dict[str, Any]:
    """What to call before deleting a connector (the API's DELETE, a pipeline's undeploy): for a
    pg_logical connector, stop its tasks and drop its slot and publication; for others, say there
    is nothing to drop. On failure the connector's previous target state is restored and
    DecommissionFailed raised: keep the connector, so the slot is not forgotten."""
    try:
        if record.plugin == "relational.pg_logical":
            stop_tasks(store, leases, record, wait)
        return decommission(record.name, record.plugin, record.config, settings)
    except DecommissionFailed:
        store.signal(record.name, record.target_state)
        raise
