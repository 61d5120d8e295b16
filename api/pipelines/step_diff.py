"""What changed between two versions of a pipeline, step by step (transforms and rules).

The JSON diff of `diff.py` compares lists by position: a step inserted in the middle makes every
later step look changed. Here steps are matched by their identity instead: a rule's (or a
transform's) `id` where it has one, otherwise its whole content; the two sequences are aligned
(difflib, longest matching blocks), so an inserted step is one `added`, a deleted one one
`removed`, and a step kept under its id with other settings one `changed`. Where the alignment
replaces a run of id-less steps by another, they are paired in order as `changed` and the rest
counted added or removed.

    step_changes(old_document, new_document)
    -> [{"group": "transforms", "node": "transform:1", "mark": "added", "label": "cast",
         "old": None, "new": {...}}, ...]

`node` is the graph node id of api/pipelines/graph.py in the newer version (the older one's for a
removed step, which the newer graph does not draw)."""

from __future__ import annotations

import json
from difflib import SequenceMatcher
from typing import Any

GROUPS = ("transforms", "rules")
ENDS = ("source", "sink")


def _key(step: Any) -> str:
    if isinstance(step, dict) and step.get("id"):
        return f"id:{step['id']}"
    return "content:" + json.dumps(step, sort_keys=True, default=str)


def node_id(group: str, index: int, step: Any) -> str:
    """The node id graph.py gives this step (rules by id where they have one)."""
    if group == "transforms":
        return f"transform:{index}"
    return f"rule:{(step.get('id') if isinstance(step, dict) else None) or index}"


def _label(step: Any) -> str:
    if not isinstance(step, dict):
        return str(step)
    return str(step.get("id") or step.get("kind") or "")


def _change(group: str, mark: str, old: tuple[int, Any] | None, new: tuple[int, Any] | None) -> dict:
    index, step = new if new is not None else old  # type: ignore[misc]
    return {
        "group": group,
        "node": node_id(group, index, step),
        "mark": mark,
        "label": _label(step),
        "old": old[1] if old is not None else None,
        "new": new[1] if new is not None else None,
    }


def group_changes(group: str, old: list, new: list) -> list[dict]:
    """The changes of one list of steps, aligned by identity."""
    changes: list[dict] = []
    matcher = SequenceMatcher(a=[_key(s) for s in old], b=[_key(s) for s in new], autojunk=False)
    for op, a0, a1, b0, b1 in matcher.get_opcodes():
        if op == "equal":  # same identity: changed when an id-matched step's settings differ
            changes += [
                _change(group, "changed", (i, old[i]), (j, new[j]))
                for i, j in zip(range(a0, a1), range(b0, b1))
                if old[i] != new[j]
            ]
            continue
        paired = min(a1 - a0, b1 - b0) if op == "replace" else 0
        changes += [_change(group, "changed", (a0 + k, old[a0 + k]), (b0 + k, new[b0 + k])) for k in range(paired)]
        changes += [_change(group, "removed", (i, old[i]), None) for i in range(a0 + paired, a1)]
        changes += [_change(group, "added", None, (j, new[j])) for j in range(b0 + paired, b1)]
    return changes


def step_changes(old_document: dict, new_document: dict) -> list[dict]:
    """Every changed step of the two documents, plus the source and the sink when they differ."""
    changes: list[dict] = []
    for end in ENDS:
        before, after = old_document.get(end), new_document.get(end)
        if before != after:
            changes.append({"group": end, "node": end, "mark": "changed", "label": end, "old": before, "new": after})
    for group in GROUPS:
        changes += group_changes(group, old_document.get(group) or [], new_document.get(group) or [])
    return changes


def marks(changes: list[dict]) -> dict[str, str]:
    """Node id -> added | changed, for the newer version's graph (removed steps are not drawn)."""
    return {c["node"]: c["mark"] for c in changes if c["mark"] != "removed"}
