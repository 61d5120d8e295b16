"""Rules a profile suggests (a person confirms them): RuleSet configs with ids `profile.<column>.<check>`.

- no nulls                          -> required
- one pattern shape for every value -> regex (9 -> \\d, A -> [A-Za-z], runs counted: 999999 -> ^\\d{6}$)
- a few distinct values in many rows-> in_set (the values seen)
- numbers                           -> range [min, max] seen
- one text length                   -> length
"""

from __future__ import annotations

import re
from typing import Any

NUMERIC = ("Int", "UInt", "Float", "Decimal")


def pattern_regex(shape: str) -> str:
    out = []
    for run in re.finditer(r"(.)\1*", shape):
        ch, n = run.group(1), len(run.group(0))
        token = {"9": r"\d", "A": "[A-Za-z]"}.get(ch, re.escape(ch))
        out.append(token if n == 1 else f"{token}{{{n}}}")
    return "^" + "".join(out) + "$"


def _base_type(ctype: str) -> str:
    return ctype[len("Nullable(") : -1] if ctype.startswith("Nullable(") else ctype


def suggest_rules(profile: dict[str, Any], max_set: int = 10) -> list[dict[str, Any]]:
    rows = profile["rows"]
    out: list[dict[str, Any]] = []
    if not rows:
        return out
    for col, p in profile["columns"].items():
        base = _base_type(p["type"])
        why = {"null_ratio": p["null_ratio"], "distinct": p["distinct"]}
        if p["nulls"] == 0:
            out.append({"id": f"profile.{col}.required", "kind": "required", "fields": [col], "because": why})
        numeric = base.startswith(NUMERIC)
        if p["pattern_count"] == 1 and p["patterns"] and not numeric and rows - p["nulls"] > 1:
            out.append(
                {
                    "id": f"profile.{col}.pattern",
                    "kind": "regex",
                    "fields": [col],
                    "pattern": pattern_regex(p["patterns"][0]),
                    "because": {"pattern": p["patterns"][0]},
                }
            )
        if 0 < p["distinct"] <= max_set and rows >= 10 * p["distinct"] and len(p["top_values"]) >= p["distinct"]:
            out.append(
                {
                    "id": f"profile.{col}.values",
                    "kind": "in_set",
                    "fields": [col],
                    "values": sorted(p["top_values"]),
                    "as_text": True,
                    "because": {"distinct": p["distinct"]},
                }
            )
        elif numeric and p["min"] is not None:
            out.append(
                {
                    "id": f"profile.{col}.range",
                    "kind": "range",
                    "fields": [col],
                    "min": float(p["min"]),
                    "max": float(p["max"]),
                    "because": {"min": p["min"], "max": p["max"]},
                }
            )
        if p["length"] and p["length"]["min"] == p["length"]["max"] and p["nulls"] < rows and p["pattern_count"] != 1:
            n = p["length"]["min"]
            out.append(
                {
                    "id": f"profile.{col}.length",
                    "kind": "length",
                    "fields": [col],
                    "min": n,
                    "max": n,
                    "because": {"length": n},
                }
            )
    return out
