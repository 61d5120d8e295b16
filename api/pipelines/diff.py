"""A JSON diff of two documents: a list of add/remove/replace operations at JSON-Pointer paths
(RFC 6902 shapes, plus the old value, which a reviewer wants to see)."""

from __future__ import annotations

from typing import Any


def _pointer(parts: list) -> str:
    return "".join("/" + str(p).replace("~", "~0").replace("/", "~1") for p in parts) or ""


def diff(old: Any, new: Any, path: list | None = None) -> list[dict]:
    path = path or []
    if isinstance(old, dict) and isinstance(new, dict):
        ops: list[dict] = []
        for k in old:
            if k not in new:
                ops.append({"op": "remove", "path": _pointer(path + [k]), "old": old[k]})
            else:
                ops += diff(old[k], new[k], path + [k])
        ops += [{"op": "add", "path": _pointer(path + [k]), "value": new[k]} for k in new if k not in old]
        return ops
    if isinstance(old, list) and isinstance(new, list):
        ops = []
        for i in range(min(len(old), len(new))):
            ops += diff(old[i], new[i], path + [i])
        ops += [{"op": "add", "path": _pointer(path + [i]), "value": new[i]} for i in range(len(old), len(new))]
        ops += [
            {"op": "remove", "path": _pointer(path + [i]), "old": old[i]} for i in reversed(range(len(new), len(old)))
        ]
        return ops
    if old != new or type(old) is not type(new):
        return [{"op": "replace", "path": _pointer(path), "old": old, "value": new}]
    return []
