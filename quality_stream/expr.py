"""A small, safe expression language compiled to polars expressions.

Rule and transform files are data that may come from a UI or another team, so they are
never passed to eval(). Text is parsed with Python's `ast` (mode="eval") and only a
whitelist of node types and functions is translated; anything else is refused.

    end_date >= start_date and status in ('A', 'B')
    if_else(amount > 0, 'credit', 'debit')
    is_null(closed_at) or closed_at >= opened_at
"""

from __future__ import annotations

import ast
import operator
from collections.abc import Callable
from datetime import date, datetime

import polars as pl


class ExpressionError(ValueError):
    """Raised for syntax errors or constructs outside the whitelist."""


_BINOPS: dict[type, Callable] = {
    ast.Add: operator.add,
    ast.Sub: operator.sub,
    ast.Mult: operator.mul,
    ast.Div: operator.truediv,
    ast.FloorDiv: operator.floordiv,
    ast.Mod: operator.mod,
}
_CMPOPS: dict[type, Callable] = {
    ast.Eq: operator.eq,
    ast.NotEq: operator.ne,
    ast.Lt: operator.lt,
    ast.LtE: operator.le,
    ast.Gt: operator.gt,
    ast.GtE: operator.ge,
}


def _text(e: pl.Expr) -> pl.Expr:
    return e.cast(pl.Utf8, strict=False)


def _to_date(e: pl.Expr) -> pl.Expr:
    # Works for date/datetime columns (cast to ISO text) and for strings in ISO,
    # slash/dot separated or compact YYYYMMDD form, as found in government systems.
    s = _text(e).str.replace_all("[/.]", "-")
    return pl.coalesce(
        s.str.slice(0, 10).str.to_date("%Y-%m-%d", strict=False), s.str.slice(0, 8).str.to_date("%Y%m%d", strict=False)
    )


_FUNCS: dict[str, tuple[int, int, Callable[..., pl.Expr]]] = {
    # name: (min args, max args, builder)
    "is_null": (1, 1, lambda a: a.is_null()),
    "is_not_null": (1, 1, lambda a: a.is_not_null()),
    "is_blank": (1, 1, lambda a: a.is_null() | (_text(a).str.strip_chars() == "")),
    "len": (1, 1, lambda a: _text(a).str.len_chars()),
    "lower": (1, 1, lambda a: _text(a).str.to_lowercase()),
    "upper": (1, 1, lambda a: _text(a).str.to_uppercase()),
    "strip": (1, 1, lambda a: _text(a).str.strip_chars()),
    "str": (1, 1, _text),
    "int": (1, 1, lambda a: a.cast(pl.Int64, strict=False)),
    "float": (1, 1, lambda a: a.cast(pl.Float64, strict=False)),
    "abs": (1, 1, lambda a: a.abs()),
    "round": (1, 2, lambda a, n=None: a.round(_const_int(n, 0))),
    "date": (1, 1, lambda a: _to_date(a)),
    "year": (1, 1, lambda a: _to_date(a).dt.year()),
    "month": (1, 1, lambda a: _to_date(a).dt.month()),
    "day": (1, 1, lambda a: _to_date(a).dt.day()),
    "substr": (2, 3, lambda a, s, n=None: _text(a).str.slice(_const_int(s, 0), _const_int(n, None))),
    "starts_with": (2, 2, lambda a, p: _text(a).str.starts_with(p)),
    "ends_with": (2, 2, lambda a, p: _text(a).str.ends_with(p)),
    "contains": (2, 2, lambda a, p: _text(a).str.contains(p, literal=True)),
    "matches": (2, 2, lambda a, p: _text(a).str.contains(p)),
    "coalesce": (1, 16, lambda *a: pl.coalesce(*a)),
    "if_else": (3, 3, lambda c, a, b: pl.when(c).then(a).otherwise(b)),
    "concat": (1, 16, lambda *a: pl.concat_str([_text(x) for x in a], ignore_nulls=True)),
    "min": (2, 16, lambda *a: pl.min_horizontal(*a)),
    "max": (2, 16, lambda *a: pl.max_horizontal(*a)),
}


def _const_int(e, default):
    if e is None:
        return default
    # Constants are wrapped as literals during compilation; recover the Python value.
    v = getattr(e, "_huiliu_const", _NOCONST)
    if v is _NOCONST or not isinstance(v, int):
        raise ExpressionError("argument must be an integer constant")
    return v


_NOCONST = object()


class _Compiler:
    def __init__(self, text: str, now: datetime | None):
        self.text = text
        self.now = now
        self.columns: set[str] = set()

    def compile(self) -> pl.Expr:
        try:
            tree = ast.parse(self.text.strip(), mode="eval")
        except SyntaxError as exc:
            raise ExpressionError(f"syntax error in expression {self.text!r}: {exc.msg}") from None
        return self.visit(tree.body)

    def visit(self, node: ast.AST):
        m = getattr(self, f"v_{type(node).__name__}", None)
        if m is None:
            raise ExpressionError(f"{type(node).__name__} is not allowed in expressions: {self.text!r}")
        return m(node)

    def v_Name(self, n: ast.Name):
        if n.id in ("true", "True"):
            return self._lit(True)
        if n.id in ("false", "False"):
            return self._lit(False)
        if n.id in ("null", "None"):
            return self._lit(None)
        self.columns.add(n.id)
        return pl.col(n.id)

    def v_Subscript(self, n: ast.Subscript):
        # row["列 名"] lets column names that are not identifiers be referenced.
        if (
            isinstance(n.value, ast.Name)
            and n.value.id == "row"
            and isinstance(n.slice, ast.Constant)
            and isinstance(n.slice.value, str)
        ):
            self.columns.add(n.slice.value)
            return pl.col(n.slice.value)
        raise ExpressionError("only row['column'] subscripts are allowed")

    def v_Constant(self, n: ast.Constant):
        if not isinstance(n.value, (str, int, float, bool)) and n.value is not None:
            raise ExpressionError(f"constant {n.value!r} not allowed")
        return self._lit(n.value)

    def _lit(self, v):
        e = pl.lit(v)
        e._huiliu_const = v  # type: ignore[attr-defined]
        return e

    def v_BoolOp(self, n: ast.BoolOp):
        vals = [self.visit(v) for v in n.values]
        out = vals[0]
        for v in vals[1:]:
            out = (out & v) if isinstance(n.op, ast.And) else (out | v)
        return out

    def v_UnaryOp(self, n: ast.UnaryOp):
        v = self.visit(n.operand)
        if isinstance(n.op, ast.Not):
            return ~v
        if isinstance(n.op, ast.USub):
            c = getattr(v, "_huiliu_const", _NOCONST)
            return self._lit(-c) if isinstance(c, (int, float)) else -v
        if isinstance(n.op, ast.UAdd):
            return v
        raise ExpressionError("unsupported unary operator")

    def v_BinOp(self, n: ast.BinOp):
        op = _BINOPS.get(type(n.op))
        if op is None:
            raise ExpressionError(f"operator {type(n.op).__name__} not allowed")
        return op(self.visit(n.left), self.visit(n.right))

    def v_Compare(self, n: ast.Compare):
        left = self.visit(n.left)
        out = None
        for op, right_node in zip(n.ops, n.comparators):
            if isinstance(op, (ast.In, ast.NotIn)):
                values = self._literal_list(right_node)
                part = left.is_in(values)
                part = ~part if isinstance(op, ast.NotIn) else part
                right = None
            else:
                fn = _CMPOPS.get(type(op))
                if fn is None:
                    raise ExpressionError(f"comparison {type(op).__name__} not allowed")
                right = self.visit(right_node)
                part = fn(left, right)
            out = part if out is None else (out & part)
            left = right if right is not None else left
        return out

    def _literal_list(self, node):
        if not isinstance(node, (ast.List, ast.Tuple, ast.Set)):
            raise ExpressionError("'in' needs a literal list, e.g. x in ('a', 'b')")
        vals = []
        for e in node.elts:
            if not isinstance(e, ast.Constant):
                raise ExpressionError("'in' list must contain constants only")
            vals.append(e.value)
        return vals

    def v_Call(self, n: ast.Call):
        if not isinstance(n.func, ast.Name):
            raise ExpressionError("only plain function calls are allowed")
        name = n.func.id
        if n.keywords:
            raise ExpressionError(f"{name}(): keyword arguments are not supported")
        if name == "today" and not n.args:
            return self._lit(self._now().date())
        if name == "now" and not n.args:
            return self._lit(self._now())
        spec = _FUNCS.get(name)
        if spec is None:
            raise ExpressionError(f"unknown function {name}(); allowed: {', '.join(sorted(_FUNCS) + ['now', 'today'])}")
        lo, hi, fn = spec
        if not lo <= len(n.args) <= hi:
            raise ExpressionError(f"{name}() takes {lo}..{hi} arguments")
        args = [self.visit(a) for a in n.args]
        return fn(*args)

    def _now(self) -> datetime:
        return self.now or datetime.now()


def compile_expr(text: str, now: datetime | None = None) -> tuple[pl.Expr, set[str]]:
    """Compile expression text to (polars expression, referenced column names)."""
    if not isinstance(text, str) or not text.strip():
        raise ExpressionError("expression must be a non-empty string")
    c = _Compiler(text, now)
    expr = c.compile()
    return expr, c.columns


def validate_expr(text: str) -> set[str]:
    """Check an expression compiles; returns the columns it references (for pydantic validators)."""
    return compile_expr(text)[1]


__all__ = ["compile_expr", "validate_expr", "ExpressionError", "date"]
