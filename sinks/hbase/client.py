"""happybase connection handling: table/family provisioning, batched writes, error translation."""

from __future__ import annotations

import contextlib
import importlib
import logging
from collections.abc import Callable, Iterable, Iterator

from schemas.optional import optional_import
from sinks.base import FatalSinkError, SinkError

from .buffer import FamilyState
from .settings import HBaseSinkSettings

happybase = optional_import("happybase", extra="hbase")
TException = optional_import("thriftpy2.thrift", extra="hbase").TException  # happybase's Thrift

log = logging.getLogger(__name__)

# The IDL module happybase generates at import time (not importable before `import happybase`,
# hence no plain `from Hbase_thrift import ...` that an import sorter could move up).
_hbase_idl = importlib.import_module("Hbase_thrift")
AlreadyExists, IllegalArgument = _hbase_idl.AlreadyExists, _hbase_idl.IllegalArgument

# What a down, restarting or overloaded HBase looks like from the client: socket errors,
# Thrift transport/protocol errors, and HBase-side IOError (region moving, server busy).
RETRYABLE = (TException, OSError, EOFError)


def open_connection(settings: HBaseSinkSettings) -> happybase.Connection:
    return happybase.Connection(
        host=settings.host,
        port=settings.port,
        timeout=settings.timeout_ms,
        transport=settings.transport,
        protocol=settings.protocol,
        autoconnect=True,
    )


class HBaseClient:
    """One lazily (re)opened connection; dropped on any wire error so the retry reconnects."""

    def __init__(
        self,
        settings: HBaseSinkSettings,
        connect: Callable[[HBaseSinkSettings], happybase.Connection] = open_connection,
    ) -> None:
        self._settings = settings
        self._connect = connect
        self._conn: happybase.Connection | None = None
        self._families: set[str] | None = None  # families known to exist on the target table
        self.table_name = settings.table_name.encode("utf-8")

    @contextlib.contextmanager
    def _errors(self, what: str) -> Iterator[None]:
        try:
            yield
        except (FatalSinkError, SinkError):
            raise
        except IllegalArgument as e:  # HBase rejected the request itself: retrying cannot help
            raise FatalSinkError(f"HBase {what} on {self._settings.table_name} rejected: {_msg(e)}") from e
        except RETRYABLE as e:
            self.close()
            raise SinkError(
                f"HBase {what} on {self._settings.table_name} via "
                f"{self._settings.host}:{self._settings.port} failed: {type(e).__name__}: {_msg(e)}"
            ) from e

    def _connection(self) -> happybase.Connection:
        if self._conn is None:
            self._conn = self._connect(self._settings)
        return self._conn

    def ensure_families(self, needed: Iterable[str]) -> None:
        """Create the table when missing; fail fatally if it exists without a needed family."""
        needed = set(needed) | set(self._settings.family_map.values())
        if self._families is not None and needed <= self._families:
            return
        with self._errors("table check"):
            self._families = self._existing_families()
            if self._families is None:
                self._create(needed)
                self._families = self._existing_families() or set()
        missing = needed - self._families
        if missing:
            # Thrift v1 has no "add column family" call; an operator must alter the table.
            alters = ", ".join(f"{{NAME => '{f}', VERSIONS => 1}}" for f in sorted(missing))
            raise FatalSinkError(
                f"HBase table {self._settings.table_name} has no column families {sorted(missing)}; "
                f"add them in the hbase shell: alter '{self._settings.table_name}', {alters}"
            )

    def _existing_families(self) -> set[str] | None:
        conn = self._connection()
        if self.table_name not in conn.client.getTableNames():
            return None
        descriptors = conn.client.getColumnDescriptors(self.table_name)
        return {name.rstrip(b":").decode("utf-8") for name in descriptors}

    def _create(self, families: set[str]) -> None:
        options = dict(self._settings.family_options)
        log.info("creating HBase table %s with families %s", self._settings.table_name, sorted(families))
        try:
            # use_prefix is moot: the table name is already fully qualified.
            self._connection().create_table(self.table_name, {f: options for f in families})
        except AlreadyExists:
            log.info("HBase table %s was created concurrently", self._settings.table_name)

    def write(self, states: Iterable[tuple[tuple[bytes, str], FamilyState]]) -> int:
        """Send the final states with happybase batches of `batch_size` mutations; returns rows sent."""
        rows = 0
        with self._errors("write"):
            table = self._connection().table(self.table_name)
            # Not used as a context manager: its __exit__ would re-send after a failed send.
            batch = table.batch(batch_size=self._settings.batch_size)
            for (row, family), state in states:
                fam = family.encode("utf-8")
                if state.delete:
                    # A bare family name is a family-wide delete marker (HBase parseColumn rule).
                    batch.delete(row, columns=[fam])
                else:
                    if state.cells:
                        batch.put(row, {fam + b":" + q: v for q, v in state.cells.items()})
                    if state.stale:
                        batch.delete(row, columns=[fam + b":" + q for q in sorted(state.stale)])
                rows += 1
            batch.send()
        return rows

    def close(self) -> None:
        # Forget the family cache too: after a reconnect the table may be gone (fresh cluster).
        self._families = None
        conn, self._conn = self._conn, None
        if conn is not None:
            with contextlib.suppress(Exception):
                conn.close()


def _msg(e: BaseException) -> str:
    # Thrift exceptions decoded with decode_response=False carry bytes messages.
    msg = getattr(e, "message", None)
    if isinstance(msg, bytes):
        msg = msg.decode("utf-8", errors="replace")
    if msg:
        return msg
    try:
        return str(e) or repr(e)
    except Exception:  # TApplicationException.__str__ can return bytes and raise
        return repr(e)
