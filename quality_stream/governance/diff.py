"""What changed between two versions of an element or a code set.

    diff_bodies(old, new) -> {"changed": {attr: {"from", "to"}}, "items": {"added", "removed", "changed"}}

Code sets' items are compared by code (label, parent, validity); other attributes by value.
"""

from __future__ import annotations

from typing import Any


def _items(old: list[dict], new: list[dict]) -> dict[str, list]:
    a, b = {i["code"]: i for i in old}, {i["code"]: i for i in new}
    changed = []
    for code in sorted(a.keys() & b.keys()):
        delta = {k: {"from": a[code].get(k), "to": b[code].get(k)} for k in a[code].keys() | b[code].keys()}
        delta = {k: v for k, v in sorted(delta.items()) if v["from"] != v["to"]}
        if delta:
            changed.append({"code": code, "changed": delta})
    return {
        "added": [b[c] for c in sorted(b.keys() - a.keys())],
        "removed": [a[c] for c in sorted(a.keys() - b.keys())],
        "changed": changed,
    }


def diff_bodies(old: dict[str, Any], new: dict[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {"changed": {}}
    for key in sorted((old.keys() | new.keys()) - {"items"}):
        if old.get(key) != new.get(key):
            out["changed"][key] = {"from": old.get(key), "to": new.get(key)}
    if "items" in old or "items" in new:
        out["items"] = _items(old.get("items") or [], new.get("items") or [])
    return out


def summary(diff: dict[str, Any]) -> str:
    parts = [f"{k} changed" for k in diff["changed"]]
    items = diff.get("items")
    if items:
        parts += [f"{len(items[k])} item(s) {k}" for k in ("added", "removed", "changed") if items[k]]
    return ", ".join(parts) or "no change"
