"""Pipeline versions compared step by step (api/pipelines/step_diff.py, issue 18): steps matched by
their id (or, without one, their content), not by position."""

from __future__ import annotations

from api.pipelines.step_diff import marks, step_changes

SOURCE = {"kind": "relational.timestamp", "config": {"table": "t"}}
SINK = {"kind": "clickhouse", "config": {"table": "t"}}
TRIM = {"kind": "trim"}
CAST = {"kind": "cast", "types": {"id": "integer"}}
RENAME = {"kind": "rename", "fields": {"a": "b"}}
NOT_NULL = {"id": "id_present", "kind": "not_null", "fields": ["id"]}
RANGE = {"id": "age_range", "kind": "range", "field": "age", "min": 0}


def _doc(transforms=(), rules=(), **extra) -> dict:
    return {"source": SOURCE, "sink": SINK, "transforms": list(transforms), "rules": list(rules), **extra}


def _summary(changes: list[dict]) -> list[tuple[str, str, str]]:
    return [(c["mark"], c["node"], c["label"]) for c in changes]


def test_a_step_inserted_in_the_middle_is_one_added_step():
    old = _doc([TRIM, RENAME], [NOT_NULL, RANGE])
    new = _doc([TRIM, CAST, RENAME], [NOT_NULL, {"id": "name_set", "kind": "not_blank"}, RANGE])
    changes = step_changes(old, new)
    assert _summary(changes) == [
        ("added", "transform:1", "cast"),
        ("added", "rule:name_set", "name_set"),
    ]
    assert marks(changes) == {"transform:1": "added", "rule:name_set": "added"}


def test_removed_moved_and_changed_steps():
    old = _doc([TRIM, CAST, RENAME], [NOT_NULL, RANGE])
    new = _doc([TRIM, RENAME], [RANGE, {**NOT_NULL, "fields": ["id", "name"]}])
    changes = step_changes(old, new)
    summary = _summary(changes)
    assert ("removed", "transform:1", "cast") in summary
    # a rule kept under its id with other settings is changed, wherever it moved
    assert ("changed", "rule:id_present", "id_present") in summary
    assert not [s for s in summary if s[2] == "age_range" and s[0] != "removed" and s[0] != "added"]
    assert marks(changes).get("transform:1") is None  # the removed step is not drawn in the newer graph


def test_an_edited_step_without_an_id_is_changed_in_place():
    old = _doc([TRIM, CAST, RENAME])
    new = _doc([TRIM, {**CAST, "types": {"id": "bigint"}}, RENAME])
    changes = step_changes(old, new)
    assert _summary(changes) == [("changed", "transform:1", "cast")]
    assert changes[0]["old"] == CAST and changes[0]["new"]["types"] == {"id": "bigint"}


def test_source_and_sink_changes_and_no_change():
    assert step_changes(_doc([TRIM]), _doc([TRIM])) == []
    changed = step_changes(_doc(), {**_doc(), "sink": {"kind": "clickhouse", "config": {"table": "u"}}})
    assert _summary(changed) == [("changed", "sink", "sink")]
