"""The data-standard form's pure side (api/console/standards_form.py, issue 18): form fields to
the API's body, the changed keys of an edit, and the API's problems placed next to their fields."""

from __future__ import annotations

from api.console.standards_form import body_of, changed, field_errors, items_of, values_of


def test_an_element_form_becomes_the_apis_body():
    form = {"name_zh": " 年龄 ", "data_type": "integer", "length": "3", "min_value": "0", "max_value": "150.5"}
    body = body_of("element", form | {"synonyms": "岁数，年纪", "precision": "三"})
    assert body["name_zh"] == "年龄" and body["length"] == 3 and body["min_value"] == 0
    assert body["max_value"] == 150.5 and body["synonyms"] == ["岁数", "年纪"]
    assert body["precision"] == "三"  # not a number: sent as typed, the API says why next to the field
    assert body["name_en"] == "" and body["unit"] is None  # emptied: "" for texts, null otherwise


def test_code_items_one_a_line_and_back():
    items = items_of("1, 男性\n\n2，女性\n21\t城镇女性, 2\n")
    assert items == [
        {"code": "1", "label": "男性"},
        {"code": "2", "label": "女性"},
        {"code": "21", "label": "城镇女性", "parent": "2"},
    ]
    assert values_of("code_set", {"name": "性别", "items": items})["items"] == "1, 男性\n2, 女性\n21, 城镇女性, 2"


def test_only_changed_keys_are_patched():
    current = {"name_zh": "年龄", "name_en": "", "unit": None, "synonyms": [], "length": 3}
    body = body_of("element", {"name_zh": "年龄", "length": "4", "data_type": "string"})
    assert changed(body, current | {"data_type": "string"}) == {"length": 4}


def test_problems_go_next_to_their_fields_in_chinese():
    problems = [
        {"field": "name_zh", "msg": "String should have at least 1 character", "msg_zh": "不能为空"},
        {"field": "items.1.label", "msg": "Field required", "msg_zh": "缺少必填项"},
        {"field": "min_value", "msg": "min_value is above max_value", "msg_zh": "最小值大于最大值"},
        {"field": "body", "msg": "odd", "msg_zh": "奇怪"},
    ]
    errors, rest = field_errors(problems, "zh-CN", "第 %(n)s 行")
    assert errors == {
        "name_zh": ["不能为空"],
        "items": ["第 2 行 label: 缺少必填项"],
        "min_value": ["最小值大于最大值"],
    }
    assert rest == ["body: 奇怪"]
    errors, _ = field_errors(problems, "en", "line %(n)s")
    assert errors["items"] == ["line 2 label: Field required"]
