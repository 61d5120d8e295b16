"""Rule kinds, RuleSet evaluation, counters, config validation."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

import polars as pl
import pytest

from quality_stream import (
    BatchVerdict,
    LookupTable,
    RuleConfigError,
    RuleSet,
    TTLStore,
    Violation,
    register_rule,
    rule_kinds,
)
from quality_stream.expr import ExpressionError, compile_expr

NOW = datetime(2026, 11, 25, 12, 0, tzinfo=UTC)


def one(cfg: dict, rows: list[dict], **kw) -> BatchVerdict:
    cfg = {"id": "r", **cfg}
    return RuleSet.from_config([cfg], **kw).evaluate(rows, now=NOW)


def failed(verdict: BatchVerdict) -> list[int]:
    return sorted(set(verdict.rejected) | set(verdict.warnings))


def test_minimal_core_contract():
    rules = RuleSet.from_config(
        [
            {
                "id": "name_required",
                "kind": "required",
                "fields": ["name"],
                "dimension": "completeness",
                "severity": "reject",
                "message": "name is required",
            },
            {
                "id": "phone_format",
                "kind": "regex",
                "fields": ["phone"],
                "pattern": r"^1[3-9]\d{9}$",
                "dimension": "validity",
                "severity": "reject",
            },
        ]
    )
    rows = [{"name": "张三", "phone": "13800138000"}, {"name": None, "phone": "12345"}, {"phone": "13900139000"}]
    v = rules.evaluate(rows)
    assert v.valid_rows == [0]
    assert v.rejected[1] == [
        Violation("name_required", "name", "name is required", "reject", "completeness"),
        Violation("phone_format", "phone", v.rejected[1][1].message, "reject", "validity"),
    ]
    assert [x.rule_id for x in v.rejected[2]] == ["name_required"]
    assert v.warnings == {}
    rules.evaluate(rows)
    assert rules.counters == {
        "name_required": {"evaluated": 6, "failed": 4},
        "phone_format": {"evaluated": 6, "failed": 2},
    }


def test_warn_severity_keeps_row_valid():
    v = one({"kind": "range", "fields": ["age"], "min": 0, "max": 150, "severity": "warn"}, [{"age": 200}, {"age": 30}])
    assert v.valid_rows == [0, 1]
    assert list(v.warnings) == [0] and v.warnings[0][0].severity == "warn"


def test_required_and_not_blank():
    rows = [{"a": "x"}, {"a": ""}, {"a": "  "}, {"a": None}, {}]
    assert failed(one({"kind": "required", "fields": ["a"]}, rows)) == [1, 2, 3, 4]
    assert failed(one({"kind": "required", "fields": ["a"], "allow_blank": True}, rows)) == [3, 4]
    assert failed(one({"kind": "not_blank", "fields": ["a"]}, rows)) == [1, 2]


def test_required_missing_column_everywhere():
    assert failed(one({"kind": "required", "fields": ["zzz"]}, [{"a": 1}, {"a": 2}])) == [0, 1]


def test_type_rule():
    rows = [{"n": "12"}, {"n": "12.5"}, {"n": "abc"}, {"n": None}]
    assert failed(one({"kind": "type", "fields": ["n"], "type": "integer"}, rows)) == [1, 2]
    assert failed(one({"kind": "type", "fields": ["n"], "type": "number"}, rows)) == [2]
    assert failed(one({"kind": "type", "fields": ["n"], "type": "integer", "strict": True}, rows)) == [0, 1, 2]
    d = [{"d": "2024-02-29"}, {"d": "2023-02-29"}, {"d": date(2020, 1, 1)}]
    assert failed(one({"kind": "type", "fields": ["d"], "type": "date"}, d)) == [1]


def test_length_counts_characters_not_bytes():
    rows = [{"n": "张"}, {"n": "张三"}, {"n": "欧阳娜娜娜娜"}]
    assert failed(one({"kind": "length", "fields": ["n"], "min": 2, "max": 4}, rows)) == [0, 2]


def test_regex_including_int_values_and_fullmatch():
    rows = [{"p": 13800138000}, {"p": "1380013800"}, {"p": "138001380001"}]
    assert failed(one({"kind": "regex", "fields": ["p"], "pattern": r"1[3-9]\d{9}", "fullmatch": True}, rows)) == [1, 2]


def test_regex_python_fallback_for_lookaround():
    rows = [{"p": "abc1"}, {"p": "abcd"}]
    assert failed(one({"kind": "regex", "fields": ["p"], "pattern": r"^(?=.*\d)"}, rows)) == [1]


def test_numeric_range():
    rows = [{"x": -1}, {"x": 0}, {"x": "100"}, {"x": 100.5}, {"x": "abc"}, {"x": None}]
    assert failed(one({"kind": "range", "fields": ["x"], "min": 0, "max": 100}, rows)) == [0, 3, 4]
    assert failed(one({"kind": "range", "fields": ["x"], "min": 0, "min_inclusive": False}, rows)) == [0, 1, 4]


def test_date_range():
    rows = [{"d": "1900-01-01"}, {"d": "2000-05-01"}, {"d": "20270101"}, {"d": "not a date"}]
    cfg = {"kind": "date_range", "fields": ["d"], "min": "1949-10-01", "max": "today"}
    assert failed(one(cfg, rows)) == [0, 2, 3]


def test_in_set_values_and_code_set():
    rows = [{"g": 1}, {"g": "2"}, {"g": "3"}, {"g": None}]
    assert failed(one({"kind": "in_set", "fields": ["g"], "values": ["1", "2"]}, rows)) == [2]
    assert failed(one({"kind": "in_set", "fields": ["g"], "code_set": "gb2261_gender"}, rows)) == [2]


def test_reference_lookup_updates_between_batches():
    rs = RuleSet.from_config(
        [{"id": "org", "kind": "reference", "fields": ["org"], "table": "orgs"}],
        lookups={"orgs": {"A01": {"name": "市局"}}},
    )
    assert failed(rs.evaluate([{"org": "A01"}, {"org": "B02"}])) == [1]
    rs.lookup("orgs").upsert("B02", {"name": "区局"})
    rs.lookup("orgs").delete("A01")  # tombstone from the compacted topic
    assert failed(rs.evaluate([{"org": "A01"}, {"org": "B02"}])) == [0]


def test_reference_empty_table_passes_until_loaded():
    assert failed(one({"kind": "reference", "fields": ["org"], "table": "orgs"}, [{"org": "X"}])) == []
    assert failed(
        one({"kind": "reference", "fields": ["org"], "table": "orgs", "pass_when_empty": False}, [{"org": "X"}])
    ) == [0]


def test_expression_consistency_with_when_and_nulls():
    rows = [
        {"s": "2024-01-01", "e": "2024-02-01", "st": "closed"},
        {"s": "2024-03-01", "e": "2024-02-01", "st": "closed"},
        {"s": "2024-03-01", "e": None, "st": "closed"},
        {"s": "2024-03-01", "e": "2024-02-01", "st": "open"},
    ]
    cfg = {"kind": "expression", "expr": "date(e) >= date(s)", "when": "st == 'closed'", "fields": ["e"]}
    v = one(cfg, rows)
    assert failed(v) == [1]
    assert v.rejected[1][0].dimension == "consistency" and v.rejected[1][0].field == "e"
    assert failed(one({**cfg, "null_fails": True}, rows)) == [1, 2]


def test_expression_language_is_safe():
    for bad in ["__import__('os').system('echo hi')", "x.__class__", "open('f')", "lambda: 1", "[x for x in y]"]:
        with pytest.raises(ExpressionError):
            compile_expr(bad)
    expr, cols = compile_expr("amount * 2 > limit and status in ('A', 'B') and not is_null(row['金额'])")
    assert cols == {"amount", "limit", "status", "金额"}
    df = pl.DataFrame({"amount": [10, 1], "limit": [5, 5], "status": ["A", "A"], "金额": [1, 1]})
    assert df.select(expr).to_series().to_list() == [True, False]


def test_unique_within_batch_and_across_batches_with_ttl():
    rs = RuleSet.from_config([{"id": "u", "kind": "unique", "fields": ["k"], "window_seconds": 60}])
    v1 = rs.evaluate([{"k": "a"}, {"k": "b"}, {"k": "a"}, {"k": None}], now=NOW)
    assert failed(v1) == [2] and v1.rejected[2][0].dimension == "uniqueness"
    assert failed(rs.evaluate([{"k": "b"}], now=NOW + timedelta(seconds=30))) == [0]
    assert failed(rs.evaluate([{"k": "a"}], now=NOW + timedelta(seconds=200))) == []


def test_unique_event_time_window():
    rs = RuleSet.from_config(
        [{"id": "u", "kind": "unique", "fields": ["k", "t2"], "window_seconds": 3600, "time_field": "ts"}]
    )
    t0 = datetime(2026, 1, 1, 8, 0)
    rows = [
        {"k": 1, "t2": "x", "ts": t0},
        {"k": 1, "t2": "x", "ts": t0 + timedelta(minutes=10)},
        {"k": 1, "t2": "x", "ts": t0 + timedelta(hours=5)},
        {"k": 1, "t2": "y", "ts": t0},
    ]
    assert failed(rs.evaluate(rows)) == [1]


def test_ttl_store_is_bounded():
    store = TTLStore(max_size=3)
    store.check_and_add(["a", "b", "c", "d"], 0.0, 100)
    assert len(store) == 3 and store.evicted == 1
    assert store.check_and_add(["a", "d"], 1.0, 100) == [False, True]


def test_freshness():
    rows = [
        {"ts": NOW - timedelta(seconds=10)},
        {"ts": NOW - timedelta(hours=2)},
        {"ts": NOW + timedelta(hours=1)},
        {"ts": None},
    ]
    assert failed(one({"kind": "freshness", "fields": ["ts"], "max_age_seconds": 600}, rows)) == [1, 2]
    epoch_ms = [
        {"ts": int((NOW - timedelta(seconds=5)).timestamp() * 1000)},
        {"ts": int((NOW - timedelta(days=1)).timestamp() * 1000)},
    ]
    assert failed(one({"kind": "freshness", "fields": ["ts"], "max_age_seconds": 600}, epoch_ms)) == [1]
    # Naive strings are Beijing time: 20:00 Beijing == 12:00 UTC == NOW.
    naive = [{"ts": "2026-11-25 19:59:00"}, {"ts": "2026-11-25 12:00:00"}]
    assert failed(one({"kind": "freshness", "fields": ["ts"], "max_age_seconds": 600}, naive)) == [1]


@register_rule("even", mode="series")
def _even(s: pl.Series) -> pl.Series:
    return s.cast(pl.Int64, strict=False) % 2 == 0


@register_rule("startswith", mode="value")
def _startswith(v, prefix: str) -> bool:
    return str(v).startswith(prefix)


@register_rule("sum_ok", mode="frame")
def _sum_ok(df: pl.DataFrame, total: str) -> pl.Series:
    return df.select(pl.col("a") + pl.col("b") == pl.col(total)).to_series()


def test_custom_rules():
    assert failed(one({"kind": "custom", "function": "even", "fields": ["n"]}, [{"n": 2}, {"n": 3}, {"n": None}])) == [
        1
    ]
    assert failed(
        one(
            {"kind": "custom", "function": "startswith", "fields": ["c"], "params": {"prefix": "37"}},
            [{"c": "370102"}, {"c": "110101"}],
        )
    ) == [1]
    assert failed(
        one(
            {"kind": "custom", "function": "sum_ok", "params": {"total": "t"}},
            [{"a": 1, "b": 2, "t": 3}, {"a": 1, "b": 2, "t": 4}],
        )
    ) == [1]


@pytest.mark.parametrize(
    "cfg, field",
    [
        ({"id": "r1", "kind": "regex", "fields": ["a"], "pattern": "("}, "pattern"),
        ({"id": "r2", "kind": "range", "fields": ["a"], "mn": 1}, "mn"),
        ({"id": "r3", "kind": "nope", "fields": ["a"]}, "kind"),
        ({"id": "r4", "kind": "required", "fields": []}, "fields"),
        ({"id": "r5", "kind": "required", "fields": ["a"], "severity": "fatal"}, "severity"),
        ({"id": "r6", "kind": "required", "fields": ["a"], "dimension": "beauty"}, "dimension"),
        ({"id": "r7", "kind": "expression", "expr": "__import__('os')"}, "expr"),
        ({"id": "r8", "kind": "custom", "function": "not_registered", "fields": ["a"]}, "function"),
        ({"id": "r9", "kind": "in_set", "fields": ["a"], "code_set": "no_such_set"}, "code_set"),
        ({"id": "r10", "kind": "unique", "fields": ["a"]}, "window_seconds"),
        ({"id": "r11", "kind": "citizen_id", "fields": ["a"], "allow_15_digit": "maybe"}, "allow_15_digit"),
    ],
)
def test_bad_rule_definitions_name_rule_and_field(cfg, field):
    with pytest.raises(RuleConfigError) as exc:
        RuleSet.from_config([cfg])
    assert cfg["id"] in str(exc.value) and field in str(exc.value)
    assert exc.value.field == field


def test_duplicate_ids_refused():
    with pytest.raises(RuleConfigError, match="duplicate"):
        RuleSet.from_config([{"id": "a", "kind": "required", "fields": ["x"]}] * 2)


def test_rule_kinds_expose_json_schema():
    kinds = rule_kinds()
    for k in [
        "required",
        "not_blank",
        "type",
        "length",
        "regex",
        "range",
        "date_range",
        "in_set",
        "reference",
        "expression",
        "unique",
        "freshness",
        "custom",
        "citizen_id",
        "social_credit_code",
        "org_code",
        "division_code",
        "gender_code",
        "mobile",
        "landline",
        "postal_code",
        "id_matches_birth_gender",
        "id_division_known",
    ]:
        assert kinds[k]["type"] == "object" and "properties" in kinds[k], k
    assert "pattern" in kinds["regex"]["required"]


def test_from_yaml_and_empty_batch():
    rs = RuleSet.from_yaml("""
rules:
  - id: name_required
    kind: required
    fields: [name]
  - id: id_ok
    kind: citizen_id
    fields: [id_number]
    severity: warn
""")
    v = rs.evaluate([])
    assert v.valid_rows == [] and v.row_count == 0
    v = rs.evaluate([{"name": "张三", "id_number": "11010519491231002X"}, {"name": "李四", "id_number": "123"}])
    assert v.valid_rows == [0, 1] and list(v.warnings) == [1]
    valid, rejected = v.split([{"a": 1}, {"a": 2}])
    assert valid == [{"a": 1}, {"a": 2}] and rejected == []


def test_evaluate_frame_directly():
    rs = RuleSet.from_config([{"id": "m", "kind": "mobile", "fields": ["p"]}])
    v = rs.evaluate_frame(pl.DataFrame({"p": ["13800138000", "023-1234"]}))
    assert v.valid_rows == [0] and rs.counters["m"] == {"evaluated": 2, "failed": 1}


def test_lookup_table_version():
    t = LookupTable(["a"])
    v0 = t.version
    t.upsert("b")
    assert t.version > v0 and "b" in t and len(t.keys_series()) == 2
