"""The (key, source sequence) pairs an HDFS sink wrote lately, per table of a topic partition, so a
replay's copy of an event already written is skipped.

Topics are at least once: a runner or a source killed -9 produces again what it had produced since
its last commit (same key, same `source.sequence`, later offsets). The files hold each offset once,
but such a copy has an offset of its own. Its distance behind the original is bounded by the
upstream stages' uncommitted windows, so only the pairs written at the last `span` offsets of the
partition are kept (a few MB), not every key ever written; after a restart the window is seeded
from the committed files' tail (`HdfsSinkTask._load_dir`).

Key values are compared in one normal form whether they come from a batch or are read back from a
file: integers as Int64, timestamps as naive UTC micro-seconds, dates and booleans as they are,
anything else as text.
"""

from __future__ import annotations

import polars as pl

SEQUENCE, OFFSET = "_sequence", "_offset"


def normal_form(ids: pl.DataFrame, key_fields: list[str]) -> pl.DataFrame:
    """`ids` (the key fields, `_sequence`, `_offset`) with key values in the one comparable form."""
    exprs = []
    for name in key_fields:
        dtype, col = ids.schema[name], pl.col(name)
        if dtype.is_integer():
            exprs.append(col.cast(pl.Int64))
        elif isinstance(dtype, pl.Datetime):
            utc = col.dt.convert_time_zone("UTC").dt.replace_time_zone(None) if dtype.time_zone else col
            exprs.append(utc.cast(pl.Datetime("us")))
        elif dtype in (pl.Date, pl.Boolean):
            exprs.append(col)
        else:
            exprs.append(col.cast(pl.Utf8))
    return ids.select(*exprs, pl.col(SEQUENCE).cast(pl.Int64), pl.col(OFFSET).cast(pl.Int64))


class RecentWrites:
    """The pairs written at the last `span` offsets of one partition, for one table (its key fields)."""

    def __init__(self, key_fields: list[str], span: int) -> None:
        self.key_fields = key_fields
        self.span = span
        self._on = [*key_fields, SEQUENCE]
        self._seen: pl.DataFrame | None = None
        self._top = -1  # the highest offset remembered

    def seed(self, ids: pl.DataFrame) -> None:
        """Remember pairs already in the files (read back after a restart)."""
        self._remember(normal_form(ids, self.key_fields))

    def unseen(self, ids: pl.DataFrame) -> pl.Series:
        """A mask over `ids` (offsets ascending): True for an event whose pair is neither in the
        window nor earlier in `ids`; a null sequence is never a copy. The caller `remember`s the
        rows it buffers (a put that fails partway leaves the rest unremembered for its retry)."""
        rows = normal_form(ids, self.key_fields).with_row_index("_row")
        first = rows.select(pl.struct(self._on).is_first_distinct() | pl.col(SEQUENCE).is_null()).to_series()
        if self._seen is not None and self._seen.height:
            seen = rows.join(self._seen.select(self._on), on=self._on, how="semi").get_column("_row")
            fresh = first & ~rows.get_column("_row").is_in(seen.implode())
        else:
            fresh = first
        return fresh.alias("unseen")

    def remember(self, ids: pl.DataFrame) -> None:
        """Pairs now written (buffered for a file)."""
        self._remember(normal_form(ids, self.key_fields))

    def _remember(self, rows: pl.DataFrame) -> None:
        if not rows.height:
            return
        if self._seen is not None and self._seen.schema != rows.schema:
            rows = rows.cast(dict(self._seen.schema), strict=False)  # e.g. a key column all null in a file
        self._top = max(self._top, int(rows.get_column(OFFSET).max()))
        seen = rows if self._seen is None else pl.concat([self._seen, rows], rechunk=False)
        self._seen = seen.filter(pl.col(OFFSET) > self._top - self.span)
        if self._seen.n_chunks() > 64:
            self._seen = self._seen.rechunk()

    def __len__(self) -> int:
        return 0 if self._seen is None else self._seen.height
