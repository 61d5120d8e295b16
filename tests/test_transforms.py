"""Transform kinds, pipeline, config validation."""

from __future__ import annotations

from datetime import date

import polars as pl
import pytest

from quality_stream import TTLStore
from streams.transforms import TransformConfigError, build_transforms, transform_kinds
from streams.transforms.route import Route


def run(cfg: list[dict], rows: list[dict], **kw) -> list[dict]:
    return build_transforms(cfg, **kw).apply(rows)


def test_minimal_trim_contract_and_apply_frame():
    steps = build_transforms([{"kind": "trim", "fields": ["name", "phone"]}])
    assert steps.apply([{"name": " 张三 ", "phone": " 13800138000", "x": " keep "}]) == [
        {"name": "张三", "phone": "13800138000", "x": " keep "}
    ]
    df = steps.steps[0].apply_frame(pl.DataFrame({"name": [" a "], "phone": [None]}))
    assert df["name"].to_list() == ["a"]
    assert steps.apply([]) == []


def test_normalise_full_width_whitespace_case():
    out = run(
        [{"kind": "normalise", "fields": ["a", "b"], "case": "upper", "empty_to_null": True}],
        [{"a": "１３８００１３８０００", "b": "ａｂｃ　 　ｄ"}, {"a": "  ", "b": "x\t\ny"}],
    )
    assert out == [{"a": "13800138000", "b": "ABC D"}, {"a": None, "b": "X Y"}]


def test_normalise_converts_full_width_in_the_columns_holding_any():
    """Full-width characters are looked for per column and batch first: a column with none in the
    batch skips the conversion, one with a single such value converts it."""
    from streams.transforms.normalise import FULL_WIDTH, full_to_half_text

    texts = ["".join(FULL_WIDTH), "\uff00\uff5f plain", None, "张三　李四"]
    out = run(
        [{"kind": "normalise", "fields": ["wide", "narrow", "empty"]}],
        [{"wide": t, "narrow": "a  b", "empty": None} for t in texts],
    )
    expected = [None if t is None else " ".join(full_to_half_text(t).split()) for t in texts]
    assert [r["wide"] for r in out] == expected
    assert [r["narrow"] for r in out] == ["a b"] * 4 and [r["empty"] for r in out] == [None] * 4


def test_filter_and_derive_expressions():
    rows = [
        {"amount": 10, "kind": "A", "birth": "1990-03-07"},
        {"amount": -1, "kind": "A", "birth": None},
        {"amount": 5, "kind": "C", "birth": "2001-01-01"},
    ]
    out = run(
        [
            {"kind": "filter", "expr": "amount > 0 and kind in ('A', 'B')"},
            {
                "kind": "derive",
                "fields": {
                    "double": "amount * 2",
                    "born": "year(birth)",
                    "label": "if_else(double > 10, 'big', 'small')",
                },
            },
        ],
        rows,
    )
    assert out == [{"amount": 10, "kind": "A", "birth": "1990-03-07", "double": 20, "born": 1990, "label": "big"}]


def test_project_rename_cast_default():
    rows = [{"a": "1", "b": "2024-01-02", "c": " ", "d": "x"}, {"a": "x", "b": None, "c": None, "d": "y"}]
    out = run(
        [
            {"kind": "cast", "types": {"a": "integer", "b": "date"}},
            {"kind": "default", "values": {"c": "unknown", "e": 0}},
            {"kind": "project", "fields": ["a", "b", "c", "e"], "rename": {"a": "n"}},
            {"kind": "rename", "mapping": {"b": "day"}},
        ],
        rows,
    )
    assert out == [
        {"n": 1, "day": date(2024, 1, 2), "c": "unknown", "e": 0},
        {"n": None, "day": None, "c": "unknown", "e": 0},
    ]


def test_dedupe_with_window_and_shared_store():
    store = TTLStore()
    p = build_transforms(
        [{"kind": "dedupe", "fields": ["id"], "window_seconds": 60, "store": "s"}], stores={"s": store}
    )
    assert [r["v"] for r in p.apply([{"id": 1, "v": 1}, {"id": 1, "v": 2}, {"id": 2, "v": 3}])] == [1, 3]
    assert p.apply([{"id": 2, "v": 4}]) == []
    assert len(store) == 2


def test_lookup_enrich_from_table():
    p = build_transforms(
        [
            {
                "kind": "lookup",
                "key": "org",
                "table": "orgs",
                "fields": {"org_name": "name"},
                "defaults": {"org_name": "未知"},
            }
        ],
        lookups={"orgs": {"A01": {"name": "市局"}, "2": {"name": "区局"}}},
    )
    out = p.apply([{"org": "A01"}, {"org": 2}, {"org": "Z"}])
    assert [r["org_name"] for r in out] == ["市局", "区局", "未知"]
    p.steps[0].table.upsert("Z", {"name": "新单位"})
    assert p.apply([{"org": "Z"}])[0]["org_name"] == "新单位"


def test_route_returns_route_name_per_row():
    p = build_transforms(
        [
            {
                "kind": "route",
                "routes": [{"name": "big", "when": "amount >= 100"}, {"name": "bad", "when": "is_null(amount)"}],
                "default": "normal",
            }
        ]
    )
    rows = [{"amount": 500}, {"amount": 5}, {"amount": None}]
    step = p.steps[0]
    assert isinstance(step, Route)
    assert step.routes(rows) == ["big", "normal", "bad"]
    assert [r["_route"] for r in p.apply(rows)] == ["big", "normal", "bad"]
    assert {k: len(v) for k, v in step.split(rows).items()} == {"big": 1, "normal": 1, "bad": 1}


def test_mask_transform_fields_and_policy():
    rows = [{"name": "欧阳娜娜", "phone": "13812345678", "id": "11010519491231002X"}]
    out = run([{"kind": "mask", "fields": {"name": "name", "phone": "phone", "id": "id_number"}}], rows)
    assert out == [{"name": "欧阳**", "phone": "138****5678", "id": "110105********002X"}]
    out = run(
        [{"kind": "mask", "policy": {"ops": {"id": {"fn": "hash", "secret_ref": "salt"}}}, "role": "ops"}],
        rows,
        secrets={"salt": "k"},
    )
    assert len(out[0]["id"]) == 64 and out[0]["name"] == "欧阳娜娜"


def test_standardise_codes_to_gb2261():
    rows = [{"sex": "男"}, {"sex": "女"}, {"sex": "未知"}, {"sex": None}]
    out = run(
        [
            {
                "kind": "standardise",
                "field": "sex",
                "mapping": {"男": "1", "女": "2", "未知": "0"},
                "code_set": "gb2261_gender",
                "target": "sex_code",
            }
        ],
        rows,
    )
    assert [r["sex_code"] for r in out] == ["1", "2", "0", None]
    out = run([{"kind": "standardise", "field": "sex", "mapping": {"男": "1"}, "unmapped": "null"}], rows)
    assert [r["sex"] for r in out] == ["1", None, None, None]


def test_flatten_nested_fields():
    rows = [{"id": 1, "addr": {"city": "济南", "geo": {"lat": 36.6, "lon": 117.0}}}, {"id": 2, "addr": None}]
    out = run([{"kind": "flatten", "separator": "_"}], rows)
    assert out[0] == {"id": 1, "addr_city": "济南", "addr_geo_lat": 36.6, "addr_geo_lon": 117.0}
    assert out[1]["addr_city"] is None


@pytest.mark.parametrize(
    "cfg, field",
    [
        ({"kind": "trim", "fields": "name"}, "fields"),
        ({"kind": "teleport"}, "kind"),
        ({"kind": "filter", "expr": "__import__('os')"}, "expr"),
        ({"kind": "cast", "types": {"a": "complex"}}, "types.a"),
        ({"kind": "dedupe", "fields": ["a"], "window_seconds": -1}, "window_seconds"),
        ({"kind": "lookup", "key": "a", "table": "missing", "fields": {"x": "y"}}, "table"),
        ({"kind": "mask", "fields": {"a": "scramble"}}, "fields"),
        ({"kind": "standardise", "field": "s", "mapping": {"男": "M"}, "code_set": "gb2261_gender"}, "mapping"),
        ({"kind": "route", "routes": [{"name": "x", "when": "a +"}]}, "routes.0.when"),
        ({"kind": "derive", "fields": {"x": "open('f')"}}, "fields"),
    ],
)
def test_bad_transform_definitions_name_the_field(cfg, field):
    with pytest.raises(TransformConfigError) as exc:
        build_transforms([{"id": "step1", **cfg}])
    assert "step1" in str(exc.value) and exc.value.field == field


def test_transform_kinds_have_schemas():
    kinds = transform_kinds()
    for k in [
        "filter",
        "project",
        "rename",
        "cast",
        "derive",
        "trim",
        "normalise",
        "default",
        "dedupe",
        "lookup",
        "route",
        "mask",
        "standardise",
        "flatten",
    ]:
        assert kinds[k]["type"] == "object", k
