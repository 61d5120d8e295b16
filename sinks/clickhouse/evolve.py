"""Which column type changes a ClickHouse table can follow (issue 15: schema evolution).

A source column widened (int -> bigint, float -> double, a decimal with more digits, NOT NULL
dropped) arrives as a new schema whose field maps to a wider ClickHouse type: the sink changes the
column with `ALTER TABLE ... MODIFY COLUMN` and goes on. Rows of the older, narrower schema still
fit the wider column. Anything else stays a fatal error naming field and both types.
"""

from __future__ import annotations

import re

_INTS = ("Int8", "Int16", "Int32", "Int64")
_FLOATS = ("Float32", "Float64")
_DECIMAL = re.compile(r"Decimal\((\d+),\s*(\d+)\)")


def _strip(t: str) -> tuple[str, bool]:
    return (t[9:-1], True) if t.startswith("Nullable(") else (t, False)


def holds(wide: str, narrow: str) -> bool:
    """Can a column of type `wide` hold every value of type `narrow`?"""
    (w, w_null), (n, n_null) = _strip(wide), _strip(narrow)
    if n_null and not w_null:
        return False
    if w == n:
        return True
    for family in (_INTS, _FLOATS):
        if w in family and n in family:
            return family.index(w) >= family.index(n)
    dw, dn = _DECIMAL.fullmatch(w), _DECIMAL.fullmatch(n)
    if dw and dn:
        (wp, ws), (np_, ns) = map(int, dw.groups()), map(int, dn.groups())
        return ws >= ns and wp - ws >= np_ - ns
    return False
