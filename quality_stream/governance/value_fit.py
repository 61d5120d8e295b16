"""Suggest a data element for catalogue fields from their sampled values; a person confirms.

    value_checks(values, element, codes=None) -> [{"check", "matched", "sampled", "ratio", "why", "why_zh"}]
    suggest_by_values(samples, elements, code_sets, limit=3, min_score=0.7, min_sampled=20)
        samples:   {field: [value as text]}        elements: [{"code", "format", "code_set", "length", ...}]
        code_sets: {code set code: {"codes": set, "name": str}}
        -> {field: [{"element", "score", "evidence": [checks]}]}  best first

Evidence a field's values give for an element: the share of sampled values that are codes of the
element's code set, that match its format (the whole value), that fit its length and that parse as
its data type. Only code set and format say what a value *is*, so an element without either is
never suggested from values alone (every short text fits a length). The score is the weakest
check's ratio: every check must fit for a strong suggestion.
"""

from __future__ import annotations

import datetime as dt
import re
from typing import Any


def _parses(value: str, data_type: str) -> bool:
    text = value.strip()
    try:
        if data_type == "integer":
            return re.fullmatch(r"[+-]?\d+", text) is not None
        if data_type == "number":
            float(text)
            return True
        if data_type == "boolean":
            return text.lower() in {"true", "false", "0", "1"}
        if data_type == "date":
            dt.date.fromisoformat(text)
            return True
        if data_type == "datetime":
            dt.datetime.fromisoformat(text)
            return True
    except ValueError:
        return False
    return True


def _check(check: str, matched: int, sampled: int, what: str, what_zh: str) -> dict[str, Any]:
    ratio = matched / sampled
    pct = f"{ratio:.0%}"
    return {
        "check": check,
        "matched": matched,
        "sampled": sampled,
        "ratio": round(ratio, 4),
        "why": f"{pct} of {sampled:,} sampled values {what}",
        "why_zh": f"抽样 {sampled:,} 个值中 {pct} {what_zh}",
    }


def value_checks(values: list[str], element: dict[str, Any], codes: dict[str, Any] | None = None) -> list[dict]:
    n = len(values)
    if not n:
        return []
    out = []
    if element.get("code_set") and codes is not None:
        inside = sum(1 for v in values if v.strip() in codes["codes"])
        label = codes.get("name") or element["code_set"]
        out.append(_check("code_set", inside, n, f"are {label} codes", f"是 {label} 的代码"))
    if element.get("format"):
        pattern = re.compile(element["format"])
        hits = sum(1 for v in values if pattern.fullmatch(v))
        out.append(_check("format", hits, n, f"match the format {element['format']}", f"符合格式 {element['format']}"))
    low, high = element.get("min_length"), element.get("length")
    if low is not None or high is not None:
        fits = sum(1 for v in values if (low is None or len(v) >= low) and (high is None or len(v) <= high))
        span = f"{low or 0}..{high if high is not None else ''}"
        out.append(_check("length", fits, n, f"have a length in {span}", f"长度在 {span} 之内"))
    data_type = element.get("data_type") or "string"
    if data_type != "string":
        fits = sum(1 for v in values if _parses(v, data_type))
        out.append(_check("type", fits, n, f"read as {data_type}", f"可读作 {data_type}"))
    return out


def suggest_by_values(
    samples: dict[str, list[str]],
    elements: list[dict[str, Any]],
    code_sets: dict[str, dict[str, Any]],
    limit: int = 3,
    min_score: float = 0.7,
    min_sampled: int = 20,
) -> dict[str, list[dict[str, Any]]]:
    out: dict[str, list[dict[str, Any]]] = {}
    for field, values in samples.items():
        found = []
        if len(values) >= min_sampled:  # a handful of values proves nothing
            for e in elements:
                checks = value_checks(values, e, code_sets.get(e.get("code_set") or ""))
                if not any(c["check"] in ("code_set", "format") for c in checks):
                    continue
                score = min(c["ratio"] for c in checks)
                if score >= min_score:
                    found.append({"element": e["code"], "score": round(score, 3), "evidence": checks})
        out[field] = sorted(found, key=lambda s: (-s["score"], s["element"]))[:limit]
    return out


def merge_suggestions(
    by_name: dict[str, list[dict[str, Any]]], by_values: dict[str, list[dict[str, Any]]], limit: int = 3
) -> dict[str, list[dict[str, Any]]]:
    """One list per field: an element suggested by name, by values or both, scored by its best basis."""
    out: dict[str, list[dict[str, Any]]] = {}
    for field in by_name.keys() | by_values.keys():
        merged: dict[str, dict[str, Any]] = {}
        for s in by_name.get(field, []):
            merged[s["element"]] = {**s, "basis": ["name"], "evidence": []}
        for s in by_values.get(field, []):
            m = merged.setdefault(s["element"], {"element": s["element"], "score": 0.0, "why": "", "basis": []})
            m["basis"].append("values")
            m["evidence"] = s["evidence"]
            m["score"] = max(m["score"], s["score"])
        out[field] = sorted(merged.values(), key=lambda s: (-s["score"], s["element"]))[:limit]
    return out
