"""pgoutput transactions -> change events: per table one ChangeFrame decoded in bulk
(connectors.relational.cdc_pg_columns), or ChangeEvents with text values loaded one by one by
psycopg's loader for each type OID where the bulk path does not apply.

Using psycopg's loaders gives streamed rows exactly the Python types the snapshot's SELECT
returns; the per-relation plan (index, column, loader, converter) is built once per layout
because this runs for every value of every change. Both paths give the same envelopes
(tests/test_cdc_pg_columns.py compares their bytes).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
from psycopg.adapt import Transformer
from psycopg.pq import Format

from connectors.base import CapturedTable, ChangeEvent, ChangeFrame
from connectors.columns import row_type
from connectors.relational.cdc_common import converter
from connectors.relational.cdc_pg_columns import OPS, decode_images, hex_upper
from connectors.relational.cdc_pgoutput import UNCHANGED_TOAST, Transaction, decode_change, int_to_lsn


@dataclass
class _TableChanges:
    """The changes of one table in a batch of transactions, as runs of messages in source order:
    (transaction index, relation, first, end, changes of the transaction before the run, of this
    table before the run)."""

    table: CapturedTable
    runs: list[tuple[int, Any, int, int, int, int]] = field(default_factory=list)


class EventBuilder:
    def __init__(self, tables: dict[tuple[str, str], CapturedTable], loaders: Transformer, columnar: bool = True):
        self.tables = tables
        self.loaders = loaders
        self.columnar = columnar  # False: every change one by one (a database not in UTF-8)
        self.plans: dict[tuple, tuple[list, list[str]]] = {}

    def plan(self, rel, table: CapturedTable) -> tuple[list, list[str]]:
        """Per relation layout: (tuple index, column, text loader, converter) for each captured column."""
        key = (rel.oid, tuple(rel.columns))
        plan = self.plans.get(key)
        if plan is None:
            convs = {c.name: converter(c, table.table, table.unknown_types) for c in table.columns}
            steps = [
                (i, name, self.loaders.get_loader(oid, Format.TEXT).load, convs[name])
                for i, (name, oid) in enumerate(rel.columns)
                if name in convs
            ]
            missing = [n for n in convs if n not in {s[1] for s in steps}]  # dropped since capture started
            plan = self.plans[key] = (steps, missing)
        return plan

    @staticmethod
    def row(plan, raw: list, old: dict | None = None) -> dict[str, Any]:
        steps, missing = plan
        out: dict[str, Any] = dict.fromkeys(missing)
        for i, name, load, conv in steps:
            v = raw[i]
            if v is UNCHANGED_TOAST:  # not resent: the full old image has it
                v = old.get(name) if old else None
            elif v is not None:
                v = load(v)
                if conv is not None:
                    v = conv(v)
            out[name] = v
        return out

    def build(self, txns: list[Transaction]) -> tuple[list[ChangeEvent], list[ChangeFrame]]:
        """The change events of `txns`: per table a frame, or events where the bulk path does not
        apply. A table's changes keep their order."""
        events: list[ChangeEvent] = []
        frames: list[ChangeFrame] = []
        for changes in self._by_table(txns).values():
            frame = self._frame(txns, changes) if self.columnar else None
            if frame is None:
                events += self._events(txns, changes)
            else:
                frames.append(frame)
        return events, frames

    def _by_table(self, txns: list[Transaction]) -> dict[tuple[str, str], _TableChanges]:
        out: dict[tuple[str, str], _TableChanges] = {}
        for t, txn in enumerate(txns):
            order = 0  # the transaction's changes of captured tables before this run
            per_table: dict[tuple[str, str], int] = {}
            for rel, start, end in txn.run_bounds():
                key = (rel.namespace, rel.name)
                table = self.tables.get(key)
                if table is None:
                    continue
                changes = out.get(key)
                if changes is None:
                    changes = out[key] = _TableChanges(table)
                seen = per_table.get(key, 0)
                changes.runs.append((t, rel, start, end, order, seen))
                order += end - start
                per_table[key] = seen + end - start
        return out

    def _events(self, txns: list[Transaction], changes: _TableChanges) -> list[ChangeEvent]:
        events = []
        table = changes.table
        for t, rel, start, end, order, seen in changes.runs:
            txn = txns[t]
            xid, ts = str(txn.xid), txn.commit_ts_ms
            position_tail = _position_tail(txn)
            plan = self.plan(rel, table)
            for i in range(start, end):
                change = decode_change(rel, txn.messages[i])
                old = self.row(plan, change.old) if change.old is not None else None
                new = self.row(plan, change.new, old) if change.new is not None else None
                order += 1
                seen += 1
                events.append(
                    ChangeEvent(
                        table,
                        change.op,
                        old,
                        new,
                        ts,
                        '{"lsn": "' + int_to_lsn(change.lsn) + position_tail,
                        change.lsn,
                        False,
                        {"id": xid, "total_order": order, "data_collection_order": seen},
                    )
                )
        return events

    def _frame(self, txns: list[Transaction], changes: _TableChanges) -> ChangeFrame | None:
        table, runs = changes.table, changes.runs
        rel = runs[0][1]
        arrow_type = row_type(table)
        if arrow_type is None or any(r[1].columns != rel.columns for r in runs):
            return None
        messages: list = []
        for t, _, start, end, _, _ in runs:
            messages += txns[t].messages[start:end]
        # the row type's fields are Avro names, in the table's column order: back to source names
        fields = [pa.field(c.name, f.type) for c, f in zip(table.columns, arrow_type)]
        images = decode_images(messages, rel, fields)
        if images is None:
            return None
        n = len(messages)
        sizes = np.array([end - start for _, _, start, end, _, _ in runs], np.int64)
        run_of_row = np.repeat(np.arange(len(runs)), sizes)
        first_row = np.zeros(len(runs), np.int64)
        np.cumsum(sizes[:-1], out=first_row[1:])
        in_run = np.arange(n) - first_row[run_of_row]  # 0, 1, ... within each run
        order = np.array([r[4] for r in runs], np.int64)[run_of_row] + in_run + 1
        seen = np.array([r[5] for r in runs], np.int64)[run_of_row] + in_run + 1
        txn_of_row = pa.array(np.array([r[0] for r in runs], np.int32)[run_of_row])
        lsn = images.lsns
        tails = pa.array([_position_tail(txn) for txn in txns], pa.string())
        positions = pc.binary_join_element_wise(
            '{"lsn": "',
            hex_upper(lsn >> np.uint64(32)),
            "/",
            hex_upper(lsn & np.uint64(0xFFFFFFFF)),
            tails.take(txn_of_row),
            "",
        )
        transactions = pa.StructArray.from_arrays(
            [
                pa.DictionaryArray.from_arrays(txn_of_row, pa.array([str(txn.xid) for txn in txns], pa.string())),
                pa.array(order),
                pa.array(seen),
            ],
            names=["id", "total_order", "data_collection_order"],
        )
        return ChangeFrame(
            table,
            pa.DictionaryArray.from_arrays(pa.array(images.ops), OPS),
            images.before,
            images.after,
            pa.DictionaryArray.from_arrays(txn_of_row, pa.array([txn.commit_ts_ms for txn in txns], pa.int64())),
            positions,
            pa.array(lsn.astype(np.int64)),
            transactions,
            lambda: self._events(txns, changes),
        )


def _position_tail(txn: Transaction) -> str:
    """What follows a change's LSN in its source.position JSON text, the same for every change of
    the transaction: built once per transaction, as json.dumps per change cost ~4 us (the same
    text json.dumps gives)."""
    return f'", "commit_lsn": "{int_to_lsn(txn.commit_lsn)}", "txid": {int(txn.xid)}}}'
