"""GB 11643-1999 citizen identity numbers checked a batch at a time (the standards' rules): the column's
Arrow bytes as a (rows, width) digit matrix and numpy arithmetic. One value at a time, and the
layout, is quality_stream/standards/citizen_id.py (pure Python)."""

from __future__ import annotations

from datetime import date

import numpy as np
import polars as pl
import pyarrow as pa

from quality_stream.standards.citizen_id import CHECK_CHARS, EARLIEST_BIRTH, WEIGHTS, yyyymmdd


class IdNumbers:
    """A batch's ID numbers parsed once, as bytes, for every rule that reads them.

    The ID rules ran as polars string expressions (a regex, a date parse, 17 one-character slices
    for the check digit): about half of a runner's rule time. An ID number is fixed-width ASCII,
    so the normalised (stripped, upper-case) column's Arrow bytes are gathered into a
    (rows, width) matrix and checked with numpy arithmetic: ~20x less work per row.
    """

    def __init__(self, values: pl.Series):
        text = values.cast(pl.Utf8, strict=False).str.strip_chars().str.to_uppercase()
        self.height = len(text)
        self.null = text.is_null().to_numpy()
        arr = text.to_arrow()  # large_string: int64 offsets + one data buffer
        if isinstance(arr, pa.ChunkedArray):
            arr = arr.combine_chunks()
        offsets = np.frombuffer(arr.buffers()[1], np.int64)[arr.offset : arr.offset + len(arr) + 1]
        data = arr.buffers()[2]
        self._data = np.frombuffer(data, np.uint8) if data is not None else np.zeros(0, np.uint8)
        self._starts = offsets[:-1]
        self._lengths = np.diff(offsets)

    def fixed(self, width: int, prefix: bool = False) -> tuple[np.ndarray, np.ndarray]:
        """(row numbers, their first `width` bytes as digits 0-9 or 255) for rows of exactly
        `width` bytes (or at least, with prefix=True); null rows never."""
        fits = self._lengths >= width if prefix else self._lengths == width
        rows = np.flatnonzero(fits & ~self.null)
        matrix = self._data[self._starts[rows, None] + np.arange(width)]
        return rows, matrix - np.uint8(48)  # b"0" -> 0 ... b"9" -> 9; anything else wraps above 9

    def well_formed(self) -> tuple[np.ndarray, np.ndarray]:
        """Rows shaped like `^[0-9]{17}[0-9X]$` and their digits (X as 10)."""
        rows, d = self.fixed(18)
        last = d[:, 17]
        shaped = (d[:, :17] <= 9).all(axis=1) & ((last <= 9) | (last == ord("X") - 48))
        return rows[shaped], d[shaped]

    def mask(self, rows: np.ndarray) -> np.ndarray:
        """True at the given batch rows, False elsewhere."""
        out = np.zeros(self.height, bool)
        out[rows] = True
        return out

    def series(self, ok: np.ndarray) -> pl.Series:
        """Booleans per batch row, null where the input was null."""
        return pl.Series(ok).scatter(np.flatnonzero(self.null), None) if self.null.any() else pl.Series(ok)


_DAYS_IN_MONTH = np.array([0, 31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31])
_WEIGHT_VECTOR = np.array(WEIGHTS, np.int64)
_CHECK_BYTES = np.frombuffer(CHECK_CHARS.encode(), np.uint8) - np.uint8(48)


def digits_number(digits: np.ndarray) -> np.ndarray:
    """Each matrix row of digits read as one decimal number."""
    return digits.astype(np.int64) @ (10 ** np.arange(digits.shape[1] - 1, -1, -1))


def real_dates(y: np.ndarray, m: np.ndarray, d: np.ndarray) -> np.ndarray:
    leap = (y % 4 == 0) & ((y % 100 != 0) | (y % 400 == 0))
    month_ok = (m >= 1) & (m <= 12)
    last_day = _DAYS_IN_MONTH[np.where(month_ok, m, 0)] + ((m == 2) & leap)
    return month_ok & (d >= 1) & (d <= last_day) & (y >= 1)


def birth_yyyymmdd(digits: np.ndarray, at: int = 6) -> np.ndarray:
    """YYYYMMDD as an integer from 8 digits starting at `at` (0 where not a real date)."""
    y, m, d = (
        digits_number(digits[:, at : at + 4]),
        digits_number(digits[:, at + 4 : at + 6]),
        digits_number(digits[:, at + 6 : at + 8]),
    )
    return np.where(real_dates(y, m, d), y * 10_000 + m * 100 + d, 0)


def citizen_ids_valid(ids: IdNumbers, today: date, allow_15: bool = False) -> pl.Series:
    """True for valid IDs, False for invalid, null for null input (citizen_id_problem, per batch)."""
    rows, d = ids.well_formed()
    born = birth_yyyymmdd(d)
    in_range = (born >= yyyymmdd(EARLIEST_BIRTH)) & (born <= yyyymmdd(today))
    check = _CHECK_BYTES[(d[:, :17].astype(np.int64) @ _WEIGHT_VECTOR) % 11]
    ok = ids.mask(rows[in_range & (check == d[:, 17])])
    if allow_15:
        # First-generation IDs (before 1999): 6 division + YYMMDD (19xx) + 3 sequence, no check digit.
        rows15, d15 = ids.fixed(15)
        digits = (d15 <= 9).all(axis=1)
        rows15, d15 = rows15[digits], d15[digits]
        y, m, day = 1900 + digits_number(d15[:, 6:8]), digits_number(d15[:, 8:10]), digits_number(d15[:, 10:12])
        ok[rows15[real_dates(y, m, day)]] = True
    return ids.series(ok)
