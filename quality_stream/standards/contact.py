"""Contact formats: mobile and landline telephone numbers, postal codes, GB/T 2261.1 gender."""

from __future__ import annotations

import re
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import polars as pl

# polars is imported in the expression builders only: the scalar checks serve the API's
# sensitive-data detection, which should not load it.

# Mainland mobile numbers: 11 digits starting 13-19, optional +86 / 86 / 0086 prefix.
MOBILE = r"^(?:(?:\+|00)?86[- ]?)?1[3-9][0-9]{9}$"
# Landline: area code 0 + 2-3 digits (010, 021, 0531, ...) then a 7-8 digit local number
# not starting with 0/1, optional extension. International form +86-10-12345678 accepted.
LANDLINE = r"^(?:(?:\+|00)86[- ]?[1-9][0-9]{1,2}|0[1-9][0-9]{1,2})[- ]?[2-9][0-9]{6,7}(?:[-#转][0-9]{1,6})?$"
LANDLINE_LOCAL_OK = (
    r"^(?:(?:(?:\+|00)86[- ]?[1-9][0-9]{1,2}|0[1-9][0-9]{1,2})[- ]?)?[2-9][0-9]{6,7}(?:[-#转][0-9]{1,6})?$"
)
POSTAL = r"^[0-9]{6}$"
GENDER_CODES = ["0", "1", "2", "9"]


def _text(col: pl.Expr) -> pl.Expr:
    import polars as pl

    return col.cast(pl.Utf8, strict=False).str.strip_chars()


def pattern_valid_expr(col: pl.Expr, pattern: str) -> pl.Expr:
    import polars as pl

    ok = _text(col).str.contains(pattern)
    return pl.when(col.is_null()).then(None).otherwise(ok.fill_null(False))


def mobile_valid(value: str) -> bool:
    return re.fullmatch(MOBILE, str(value).strip()) is not None


def landline_valid(value: str, require_area_code: bool = True) -> bool:
    return re.fullmatch(LANDLINE if require_area_code else LANDLINE_LOCAL_OK, str(value).strip()) is not None


def postal_code_valid(value: str) -> bool:
    return re.fullmatch(POSTAL, str(value).strip()) is not None
