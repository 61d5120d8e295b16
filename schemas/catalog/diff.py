"""The structured difference between two versions of a dataset's shape.

    diff_shapes(old, new) -> {"added": [...], "removed": [...], "renamed": [...], "type_changed": [...],
                              "comment_changed": [...], "nullable_changed": [...], "key_changed": [...],
                              "default_changed": [...], "moved": [...], "properties_changed": [...],
                              "kind_changed": {...} | None}

A removed and an added field at the same position with the same type read as a rename (a tool
cannot tell a rename from drop + add; the position is the best evidence the source gives).
"""

from __future__ import annotations

from typing import Any

_ATTRS = (("type", "type_changed"), ("comment", "comment_changed"), ("nullable", "nullable_changed"))
_MORE = (("key", "key_changed"), ("default", "default_changed"))


def _by_name(shape: dict[str, Any] | None) -> dict[str, dict[str, Any]]:
    return {f["name"]: f for f in (shape or {}).get("fields", [])}


def diff_shapes(old: dict[str, Any] | None, new: dict[str, Any]) -> dict[str, Any]:
    before, after = _by_name(old), _by_name(new)
    added = [after[n] for n in after if n not in before]
    removed = [before[n] for n in before if n not in after]
    renamed = []
    for gone in list(removed):
        twin = next((a for a in added if a["position"] == gone["position"] and a["type"] == gone["type"]), None)
        if twin is not None:
            renamed.append({"from": gone["name"], "to": twin["name"], "position": gone["position"]})
            removed.remove(gone)
            added.remove(twin)
    out: dict[str, Any] = {
        "added": [{"name": f["name"], "type": f["type"], "position": f["position"]} for f in added],
        "removed": [{"name": f["name"], "type": f["type"], "position": f["position"]} for f in removed],
        "renamed": renamed,
    }
    for attr, label in _ATTRS + _MORE:
        out[label] = [
            {"name": n, "from": before[n].get(attr), "to": after[n].get(attr)}
            for n in after
            if n in before and before[n].get(attr) != after[n].get(attr)
        ]
    out["moved"] = [
        {"name": n, "from": before[n]["position"], "to": after[n]["position"]}
        for n in after
        if n in before and before[n]["position"] != after[n]["position"]
    ]
    old_props, new_props = (old or {}).get("properties", {}), new.get("properties", {})
    out["properties_changed"] = [
        {"name": k, "from": old_props.get(k), "to": new_props.get(k)}
        for k in sorted(set(old_props) | set(new_props))
        if old_props.get(k) != new_props.get(k)
    ]
    old_kind = (old or {}).get("kind")
    out["kind_changed"] = {"from": old_kind, "to": new["kind"]} if old and old_kind != new["kind"] else None
    return out


def is_empty(diff: dict[str, Any]) -> bool:
    return not any(v for v in diff.values())


def summary(diff: dict[str, Any]) -> str:
    """'2 added, 1 type changed' — for messages and the version list."""
    parts = [f"{len(v)} {k.replace('_', ' ')}" for k, v in diff.items() if isinstance(v, list) and v]
    if diff.get("kind_changed"):
        parts.append("kind changed")
    return ", ".join(parts) or "no change"
