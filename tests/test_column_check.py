"""The column flow of transforms and rules read without data (streams.column_check): which steps
name columns their input does not carry."""

from __future__ import annotations

from streams.column_check import missing_columns


def _missing(transforms, rules, columns=("id", "name", "phone", "born")):
    return [(m.field, m.column, m.at_source) for m in missing_columns(transforms, rules, list(columns))]


def test_each_transform_kind_names_its_inputs_and_passes_on_its_outputs():
    transforms = [
        {"kind": "trim", "fields": ["name", "nmae"]},
        {"kind": "cast", "types": {"born": "date", "age": "integer"}},
        {"kind": "derive", "fields": {"year": "year(born)", "decade": "year - year % 10"}},
        {"kind": "standardise", "field": "gender", "mapping": {"男": "1"}, "target": "gender_code"},
        {"kind": "route", "routes": [{"name": "old", "when": "decade < 1960"}], "route_field": "lane"},
        {"kind": "project", "fields": ["id", "name", "phone", "decade", "lane"], "rename": {"phone": "mobile"}},
        {"kind": "mask", "fields": {"mobile": "phone"}},
        {"kind": "dedupe", "fields": ["id"], "window_seconds": 60, "time_field": "born"},
    ]
    rules = [
        {"id": "lane_set", "kind": "in_set", "fields": ["lane"], "values": ["old", "default"]},
        {"id": "phone_req", "kind": "required", "fields": ["phone"]},
        {"id": "consistent", "kind": "expression", "expr": "decade > 0 and gender_code != ''"},
    ]
    assert _missing(transforms, rules) == [
        ("transforms.0", "nmae", True),
        ("transforms.1", "age", True),
        ("transforms.3", "gender", False),
        ("transforms.7", "born", False),  # projected away before the dedupe
        ("rules.1", "phone", False),  # renamed to mobile
        ("rules.2", "gender_code", False),  # made by standardise, then projected away
    ]


def test_a_step_whose_outputs_depend_on_data_ends_the_check_and_invalid_steps_are_left_to_their_own_check():
    assert _missing([{"kind": "flatten"}], [{"id": "r", "kind": "required", "fields": ["org.name"]}]) == []
    assert _missing([{"kind": "no-such-kind"}], [{"id": "r", "kind": "required", "fields": ["x"]}]) == []
    assert _missing([], [{"kind": "required"}, {"id": "r", "kind": "required", "fields": ["x"]}]) == [
        ("rules.1", "x", True)
    ]
