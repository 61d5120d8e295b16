"""The data-standards domain without servers (issue 16): element and code set validation naming the
field in English and Chinese, version diffs, the Excel round trip and its row/column report, mapping
suggestions (pinyin, comments, noise kept out), generated rules evaluated by the rule engine, and
the national code sets' provenance."""

from __future__ import annotations

import datetime as dt
import io

import pytest
from openpyxl import load_workbook
from pydantic import ValidationError

from quality_stream import RuleSet
from quality_stream.governance.diff import diff_bodies
from quality_stream.governance.excel import export_elements, read_elements
from quality_stream.governance.generate import element_rules, merge_rules
from quality_stream.governance.model import CodeSetSpec, ElementSpec, problems_of
from quality_stream.governance.national import national_code_set
from quality_stream.governance.suggest import suggest


def _problems(model, data) -> dict[str, dict]:
    with pytest.raises(ValidationError) as exc:
        model.model_validate(data)
    return {p["field"]: p for p in problems_of(exc.value)}


def test_validation_names_each_field_in_both_languages():
    got = _problems(
        ElementSpec, {"code": "1a", "name_zh": "", "format": "[", "data_type": "integer", "scale": 3, "precision": 2}
    )
    assert set(got) == {"code", "name_zh", "format"}
    assert got["format"]["msg_zh"].startswith("不是有效的正则表达式")
    got = _problems(ElementSpec, {"code": "a", "name_zh": "甲", "min_value": 1})
    assert got == {
        "data_type": {
            "field": "data_type",
            "msg": "a value range needs data_type integer or number",
            "msg_zh": "取值范围只适用于整数或数值类型",
        }
    }
    got = _problems(
        CodeSetSpec, {"code": "c", "name": "n", "items": [{"code": "1", "label": "a"}, {"code": "1", "label": "b"}]}
    )
    assert got["items"]["msg_zh"] == "代码 '1' 重复"


def test_code_set_diff_and_validity():
    old = {"name": "n", "items": [{"code": "1", "label": "男"}, {"code": "2", "label": "女"}]}
    new = {"name": "n2", "items": [{"code": "1", "label": "男性"}, {"code": "9", "label": "未说明"}]}
    d = diff_bodies(old, new)
    assert d["changed"] == {"name": {"from": "n", "to": "n2"}}
    assert [i["code"] for i in d["items"]["added"]] == ["9"] and [i["code"] for i in d["items"]["removed"]] == ["2"]
    assert d["items"]["changed"] == [{"code": "1", "changed": {"label": {"from": "男", "to": "男性"}}}]
    spec = CodeSetSpec.model_validate(
        {
            "code": "c",
            "name": "n",
            "items": [{"code": "a", "label": "x", "valid_to": "2020-01-01"}, {"code": "b", "label": "y"}],
        }
    )
    assert spec.codes(dt.date(2024, 1, 1)) == ["b"] and spec.codes() == ["a", "b"]


def test_excel_round_trip_and_report():
    elements = [
        {
            "code": "age",
            "name_zh": "年龄",
            "data_type": "integer",
            "min_value": 0,
            "max_value": 150,
            "synonyms": ["岁数"],
        }
    ]
    rows, errors = read_elements(export_elements(elements))
    assert errors == [] and rows[0][0] == 2
    assert rows[0][1].model_dump(exclude_defaults=True) == {**elements[0], "min_value": 0.0, "max_value": 150.0}
    wb = load_workbook(io.BytesIO(export_elements(elements)))
    wb.active.cell(row=2, column=5, value="decimal")
    out = io.BytesIO()
    wb.save(out)
    rows, errors = read_elements(out.getvalue())
    assert rows == [] and [(e["row"], e["column"], e["field"]) for e in errors] == [(2, "E", "data_type")]


def test_suggestions_match_pinyin_and_comments_but_not_noise():
    elements = [
        {"code": "full_name", "name_zh": "姓名", "name_en": "name"},
        {"code": "citizen_id", "name_zh": "公民身份号码", "name_en": "citizen ID"},
    ]
    found = suggest(
        [{"name": "xingming"}, {"name": "zjhm", "comment": "公民身份证号码"}, {"name": "id"}, {"name": "income"}],
        elements,
    )
    assert [s["element"] for s in found["xingming"]] == ["full_name"]
    assert found["zjhm"][0]["element"] == "citizen_id" and found["zjhm"][0]["score"] >= 0.9
    assert found["id"] == [] and found["income"] == []


def test_value_evidence_needs_a_code_set_or_format_and_every_check_to_fit():
    from quality_stream.governance.value_fit import merge_suggestions, suggest_by_values

    elements = [
        {"code": "xb", "length": 1, "code_set": "gb2261_1"},
        {"code": "short", "length": 2},  # fits every value but says nothing of what it is
        {"code": "day", "data_type": "date", "format": r"\d{4}-\d{2}-\d{2}"},
    ]
    sets = {"gb2261_1": {"name": "GB/T 2261.1", "codes": {"0", "1", "2", "9"}}}
    found = suggest_by_values(
        {"sex": ["1", "2"] * 20, "d": ["2026-02-30"] * 5 + ["2026-01-01"] * 35, "few": ["1"] * 5}, elements, sets
    )
    assert [s["element"] for s in found["sex"]] == ["xb"] and found["few"] == []
    (day,) = found["d"]
    assert day["score"] == 0.875 and {c["check"]: c["ratio"] for c in day["evidence"]} == {"format": 1.0, "type": 0.875}
    merged = merge_suggestions({"sex": [{"element": "xb", "score": 0.8, "why": "name"}]}, found)
    assert merged["sex"][0]["basis"] == ["name", "values"] and merged["sex"][0]["score"] == 1.0


def test_generated_rules_run_in_the_engine_and_replace_only_their_own():
    gender = national_code_set("gb2261_1").model_dump(mode="json")
    element = {
        "code": "xb",
        "version": 3,
        "name_zh": "性别",
        "data_type": "string",
        "length": 1,
        "code_set": "gb2261_1",
    }
    rules = element_rules(element, ["sex"], gender)
    assert [r["id"] for r in rules] == ["std.xb.length", "std.xb.code_set"]
    verdict = RuleSet.from_config(rules).evaluate([{"sex": "1"}, {"sex": "7"}, {"sex": None}])
    assert verdict.valid_rows == [0, 2] and [v.rule_id for v in verdict.rejected[1]] == ["std.xb.code_set"]
    hand = {"id": "mine", "kind": "required", "fields": ["sex"]}
    assert merge_rules([hand, {"id": "std.old.length"}], rules) == [hand, rules[1], rules[0]]
    assert element_rules(element, [], gender) == []


def test_national_code_sets_carry_their_source():
    divisions = national_code_set("gb2260")
    assert "modood/Administrative-divisions-of-China" in divisions.source
    by_code = {i.code: i for i in divisions.items}
    assert by_code["370100"].label == "济南市" and by_code["370100"].parent == "370000"
    assert [i.code for i in national_code_set("gb2261_1").items] == ["0", "1", "2", "9"]
    with pytest.raises(KeyError):
        national_code_set("gb4761")  # not shipped: no reliable table


def test_code_sets_checked_against_a_followed_table_for_lean_runners():
    from quality_stream.governance.generate import code_set_lookup, code_set_topic, merge_lookups
    from quality_stream.lookup import LookupTable

    gender = national_code_set("gb2261_1").model_dump(mode="json")
    element = {"code": "xb", "version": 1, "name_zh": "性别", "code_set": "gb2261_1"}
    table = code_set_lookup("gb2261_1")
    (rule,) = element_rules(element, ["sex"], gender, lookup_table=table)
    assert (rule["kind"], rule["table"], rule["pass_when_empty"]) == ("reference", "std_codes.gb2261_1", False)
    codes = LookupTable()
    for code in ("0", "1", "2", "9"):
        codes.upsert(code, None)
    verdict = RuleSet.from_config([rule], lookups={table: codes}).evaluate([{"sex": "1"}, {"sex": "7"}])
    assert verdict.valid_rows == [0] and list(verdict.rejected) == [1]
    assert code_set_topic("civil", "gb2261_1") == "_huiliu.codes.civil.gb2261_1"
    assert merge_lookups({"mine": "t1", "std_codes.old": "t2"}, {table: "t3"}) == {"mine": "t1", table: "t3"}
