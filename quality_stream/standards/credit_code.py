"""GB 32100-2015 unified social credit code (统一社会信用代码) and GB 11714 organisation code.

Credit code: 1 registration authority | 1 entity type | 6 division code |
9 organisation code (GB 11714 body + its own check) | 1 check character (MOD 31).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import polars as pl

# polars is imported in the expression builders only: the scalar checks serve the API's
# sensitive-data detection, which should not load it.

# GB 32100 alphabet: digits and capitals except I, O, Z, S, V (confusable with 1, 0, 2, 5, U).
CREDIT_CHARS = "0123456789ABCDEFGHJKLMNPQRTUWXY"
CREDIT_VALUE = {c: i for i, c in enumerate(CREDIT_CHARS)}
CREDIT_WEIGHTS = [pow(3, i, 31) for i in range(17)]  # 1, 3, 9, 27, 19, 26, ...

ORG_WEIGHTS = [3, 7, 9, 10, 5, 8, 4, 2]
_ORG_VALUE = {**{str(d): d for d in range(10)}, **{chr(ord("A") + i): 10 + i for i in range(26)}}


def credit_check_char(first17: str) -> str:
    total = sum(CREDIT_VALUE[c] * w for c, w in zip(first17, CREDIT_WEIGHTS))
    return CREDIT_CHARS[(31 - total % 31) % 31]


def credit_code_valid(value: str, check_org_code: bool = False) -> bool:
    s = (value or "").strip().upper()
    if len(s) != 18 or any(c not in CREDIT_VALUE for c in s):
        return False
    if not s[2:8].isdigit():
        return False
    if check_org_code and not org_code_valid(s[8:17]):
        return False
    return credit_check_char(s[:17]) == s[17]


def org_check_char(body8: str) -> str:
    c = 11 - sum(_ORG_VALUE[ch] * w for ch, w in zip(body8, ORG_WEIGHTS)) % 11
    return "X" if c == 10 else "0" if c == 11 else str(c)


def org_code_valid(value: str) -> bool:
    """GB 11714 organisation code, 9 characters, optionally written as XXXXXXXX-C."""
    s = (value or "").strip().upper().replace("-", "")
    if len(s) != 9 or any(ch not in _ORG_VALUE for ch in s[:8]):
        return False
    return org_check_char(s[:8]) == s[8]


def _sum_weighted(s: pl.Expr, values: dict[str, int], weights: list[int]) -> pl.Expr:
    import polars as pl

    keys, vals = list(values), list(values.values())
    return pl.sum_horizontal(
        [
            s.str.slice(i, 1).replace_strict(keys, vals, default=None, return_dtype=pl.Int32) * w
            for i, w in enumerate(weights)
        ]
    )


def org_code_valid_expr(col: pl.Expr) -> pl.Expr:
    import polars as pl

    s = col.cast(pl.Utf8, strict=False).str.strip_chars().str.to_uppercase().str.replace("-", "", literal=True)
    c = 11 - _sum_weighted(s, _ORG_VALUE, ORG_WEIGHTS) % 11
    expected = c.replace_strict([10, 11], ["X", "0"], default=c.cast(pl.Utf8), return_dtype=pl.Utf8)
    ok = s.str.contains(r"^[0-9A-Z]{8}[0-9X]$") & (s.str.slice(8, 1) == expected)
    return pl.when(col.is_null()).then(None).otherwise(ok.fill_null(False))


def credit_code_valid_expr(col: pl.Expr, check_org_code: bool = False) -> pl.Expr:
    import polars as pl

    s = col.cast(pl.Utf8, strict=False).str.strip_chars().str.to_uppercase()
    total = _sum_weighted(s, CREDIT_VALUE, CREDIT_WEIGHTS)
    expected = ((31 - total % 31) % 31).replace_strict(
        list(range(31)), list(CREDIT_CHARS), default=None, return_dtype=pl.Utf8
    )
    ok = s.str.contains(f"^[{CREDIT_CHARS}]{{2}}[0-9]{{6}}[{CREDIT_CHARS}]{{10}}$") & (s.str.slice(17, 1) == expected)
    if check_org_code:
        ok = ok & org_code_valid_expr(s.str.slice(8, 9))
    return pl.when(col.is_null()).then(None).otherwise(ok.fill_null(False))
