"""Chinese national standards: scalar reference functions and vectorised rule kinds."""

from __future__ import annotations

from datetime import UTC, date, datetime

import polars as pl
import pytest

from quality_stream import RuleSet
from quality_stream.standards.citizen_id import check_char, citizen_id_problem, gender_from_id, upgrade_15_to_18
from quality_stream.standards.contact import landline_valid, mobile_valid, postal_code_valid
from quality_stream.standards.credit_code import credit_check_char, credit_code_valid, org_check_char, org_code_valid
from quality_stream.standards.division import division_name, divisions, is_known_division

NOW = datetime(2026, 11, 25, tzinfo=UTC)
# Worked examples printed in GB 11643-1999 itself.
GB_EXAMPLE_F = "11010519491231002X"  # Beijing Chaoyang, 1949-12-31, female, check X
GB_EXAMPLE_M = "440524188001010014"  # Guangdong Shantou, 1880-01-01, male


def failing(kind_cfg: dict, rows: list[dict]) -> list[int]:
    v = RuleSet.from_config([{"id": "r", **kind_cfg}]).evaluate(rows, now=NOW)
    return sorted(v.rejected)


# --- GB 11643 citizen ID --------------------------------------------------------------
def test_citizen_id_scalar():
    assert citizen_id_problem(GB_EXAMPLE_F) is None
    assert citizen_id_problem(GB_EXAMPLE_M) is None
    assert citizen_id_problem(GB_EXAMPLE_F.lower()) is None  # lower-case x accepted
    assert citizen_id_problem("110105194912310021") == "check digit mismatch"
    body = "11010519490230002"  # 30 February
    assert citizen_id_problem(body + check_char(body)) == "birth date is not a valid date"
    future = "11010520990101002"
    assert citizen_id_problem(future + check_char(future), today=date(2026, 1, 1)) == "birth date out of range"
    assert citizen_id_problem("1101051949123100") is not None


def test_citizen_id_rule_vectorised():
    body = "37010219900307123"
    good = body + check_char(body)
    bad_check = body + ("0" if good[-1] != "0" else "1")
    feb30 = "11010519490230002"
    rows = [
        {"id": GB_EXAMPLE_F},
        {"id": GB_EXAMPLE_M},
        {"id": good},
        {"id": bad_check},
        {"id": feb30 + check_char(feb30)},
        {"id": "11010519491231002"},
        {"id": None},
        {"id": "ABCDEFGHIJKLMNOPQR"},
    ]
    assert failing({"kind": "citizen_id", "fields": ["id"]}, rows) == [3, 4, 5, 7]


def test_citizen_id_15_digit_and_division_check():
    old = "110105491231002"
    assert upgrade_15_to_18(old) == "11010519491231002X"
    assert failing({"kind": "citizen_id", "fields": ["id"]}, [{"id": old}]) == [0]
    assert failing({"kind": "citizen_id", "fields": ["id"], "allow_15_digit": True}, [{"id": old}]) == []
    body = "99010519491231002"  # province 99 does not exist
    rows = [{"id": GB_EXAMPLE_F}, {"id": body + check_char(body)}]
    assert failing({"kind": "citizen_id", "fields": ["id"]}, rows) == []
    assert failing({"kind": "citizen_id", "fields": ["id"], "check_division": True}, rows) == [1]


def test_id_matches_birth_gender():
    assert gender_from_id(GB_EXAMPLE_F) == "2" and gender_from_id(GB_EXAMPLE_M) == "1"
    cfg = {"kind": "id_matches_birth_gender", "id_field": "id", "birth_field": "birth", "gender_field": "sex"}
    rows = [
        {"id": GB_EXAMPLE_F, "birth": "1949-12-31", "sex": "2"},
        {"id": GB_EXAMPLE_F, "birth": date(1949, 12, 31), "sex": "女"},
        {"id": GB_EXAMPLE_F, "birth": "19491230", "sex": "2"},  # wrong birth date
        {"id": GB_EXAMPLE_M, "birth": "1880-01-01", "sex": "2"},  # wrong gender
        {"id": GB_EXAMPLE_M, "birth": "1880/01/01", "sex": "9"},  # unspecified gender: not contradicted
        {"id": "bad", "birth": "2000-01-01", "sex": "1"},  # malformed IDs are citizen_id's job
    ]
    v = RuleSet.from_config([{"id": "bg", **cfg}]).evaluate(rows, now=NOW)
    assert sorted(v.rejected) == [2, 3]
    assert v.rejected[2][0].field == "birth" and v.rejected[3][0].field == "sex"


def test_id_division_known():
    body = "99010519491231002"
    rows = [{"id": GB_EXAMPLE_F}, {"id": GB_EXAMPLE_M}, {"id": body + check_char(body)}, {"id": None}]
    assert failing({"kind": "id_division_known", "id_field": "id"}, rows) == [2]


# --- GB 32100 / GB 11714 ----------------------------------------------------------------
def test_social_credit_code():
    published = "91350100M000100Y43"  # published example code; verified with the MOD 31 algorithm
    assert credit_code_valid(published) and credit_code_valid(published, check_org_code=True)
    body = "91110000100000000"
    computed = body + credit_check_char(body)
    assert credit_code_valid(computed)
    assert not credit_code_valid("91350100M000100Y44")
    assert not credit_code_valid("91350100M000100I43")  # I is not in the GB 32100 alphabet
    rows = [
        {"c": published},
        {"c": computed},
        {"c": "91350100M000100Y44"},
        {"c": "9135010"},
        {"c": None},
        {"c": published.lower()},
    ]
    assert failing({"kind": "social_credit_code", "fields": ["c"]}, rows) == [2, 3]


def test_org_code():
    assert org_check_char("10000000") == "8"  # 3*1 = 3 -> 11 - 3 = 8
    assert org_code_valid("M000100Y-4") and org_code_valid("M000100Y4")
    assert not org_code_valid("M000100Y-5")
    x_body = next(b for b in (f"{n:08d}" for n in range(1000)) if org_check_char(b) == "X")
    assert org_code_valid(x_body + "-X")
    rows = [{"o": "M000100Y-4"}, {"o": "10000000-8"}, {"o": "10000000-9"}, {"o": x_body + "X"}, {"o": "1234"}]
    assert failing({"kind": "org_code", "fields": ["o"]}, rows) == [2, 4]


# --- GB/T 2260 ----------------------------------------------------------------------------
def test_division_table_content():
    table = divisions()
    provinces = [c for c, (_, lvl) in table.items() if lvl == "province"]
    assert len(provinces) == 34
    assert len(table) - len(provinces) >= 330
    assert division_name("370100") == "济南市" and division_name("440300") == "深圳市"
    assert division_name("540600") == "那曲市" and division_name("650000") == "新疆维吾尔自治区"
    assert is_known_division("370102") and is_known_division("110000")
    assert not is_known_division("999999") and not is_known_division("379900")
    assert is_known_division("370100", match="exact") and not is_known_division("370102", match="exact")


def test_division_code_rule():
    rows = [{"d": "370102"}, {"d": 110000}, {"d": "379900"}, {"d": "37010"}, {"d": "3701021"}, {"d": None}]
    assert failing({"kind": "division_code", "fields": ["d"]}, rows) == [2, 3, 4]
    assert failing({"kind": "division_code", "fields": ["d"], "match": "exact"}, rows[:2]) == [0]
    assert failing({"kind": "in_set", "fields": ["d"], "code_set": "gb2260_division"}, rows[:3]) == [0, 2]


# --- GB/T 2261.1 and contact formats --------------------------------------------------
def test_gender_code():
    rows = [{"g": 0}, {"g": "1"}, {"g": 2}, {"g": "9"}, {"g": "3"}, {"g": "男"}]
    assert failing({"kind": "gender_code", "fields": ["g"]}, rows) == [4, 5]


@pytest.mark.parametrize(
    "value, ok",
    [
        ("13800138000", True),
        ("19912345678", True),
        ("+8613800138000", True),
        ("+86 13800138000", True),
        ("008613800138000", True),
        ("12800138000", False),
        ("1380013800", False),
        ("23800138000", False),
    ],
)
def test_mobile(value, ok):
    assert mobile_valid(value) is ok
    assert failing({"kind": "mobile", "fields": ["p"]}, [{"p": value}]) == ([] if ok else [0])


@pytest.mark.parametrize(
    "value, ok",
    [
        ("010-62345678", True),
        ("0531-8612345", True),
        ("02112345678", True),
        ("0755-23456789-123", True),
        ("+86-10-62345678", True),
        ("12345678", False),
        ("010-1234567890", False),
        ("010-02345678", False),
    ],
)
def test_landline(value, ok):
    assert landline_valid(value) is ok
    assert failing({"kind": "landline", "fields": ["t"]}, [{"t": value}]) == ([] if ok else [0])


def test_landline_local_allowed_when_configured():
    assert landline_valid("82345678", require_area_code=False)
    assert failing({"kind": "landline", "fields": ["t"], "require_area_code": False}, [{"t": "82345678"}]) == []


def test_postal_code():
    assert postal_code_valid("250001") and not postal_code_valid("25000") and not postal_code_valid("2500011")
    assert failing({"kind": "postal_code", "fields": ["z"]}, [{"z": "100080"}, {"z": "1000a0"}, {"z": 250001}]) == [1]


def test_standards_vectorised_over_many_rows():
    ids = [GB_EXAMPLE_F, GB_EXAMPLE_M, "110105194912310021"] * 2000
    v = RuleSet.from_config([{"id": "c", "kind": "citizen_id", "fields": ["id"]}]).evaluate(
        [{"id": x} for x in ids], now=NOW
    )
    assert len(v.valid_rows) == 4000 and len(v.rejected) == 2000
    assert pl.Series(list(v.rejected)).min() == 2


def _id_like(rng) -> str | None:
    """ID-shaped text, mostly near-misses: real IDs, bad check digits, impossible dates (29 Feb of
    leap and common years, month 13, day 0), out-of-range years, lower-case x, blanks, letters,
    other lengths, full-width digits, nulls."""
    born = f"{rng.choice([1880, 1899, 1900, 1996, 2000, 2024, 2025, 2026, 2027])}{rng.randint(0, 13):02d}{rng.choice([0, 1, 28, 29, 30, 31, 32])}"
    body = rng.choice(["110105", "370102", "999999", "44052a"]) + born.zfill(8)[:8] + f"{rng.randint(0, 999):03d}"
    value = body + (check_char(body) if body.isdigit() else "0")
    kind = rng.randint(0, 9)
    if kind == 0:
        value = body + rng.choice("0123456789X")  # any check character
    elif kind == 1:
        value = value.lower()
    elif kind == 2:
        value = f"  {value} "
    elif kind == 3:
        value = value[: rng.randint(0, 20)]
    elif kind == 4:
        value = value.replace("1", "１", 1)  # a full-width digit: 18 characters, not 18 ASCII digits
    elif kind == 5:
        return None
    return value


def test_vectorised_id_rules_agree_with_the_scalar_reference():
    import random

    rng = random.Random(11643)
    today = NOW.date()
    rows = [{"id": _id_like(rng), "sex": rng.choice(["1", "2", "男", "女", "9", None])} for _ in range(20_000)]
    rules = [
        {"id": "cid", "kind": "citizen_id", "fields": ["id"]},
        {"id": "div", "kind": "id_division_known", "id_field": "id"},
        {"id": "sex", "kind": "id_matches_birth_gender", "id_field": "id", "gender_field": "sex"},
    ]
    v = RuleSet.from_config(rules).evaluate(rows, now=NOW)
    failed = {
        rule: {i for i, vs in v.rejected.items() if any(x.rule_id == rule for x in vs)}
        for rule in ("cid", "div", "sex")
    }
    expected = {"cid": set(), "div": set(), "sex": set()}
    for i, row in enumerate(rows):
        if row["id"] is None:
            continue
        s = row["id"].strip().upper()
        if not s.isascii() or citizen_id_problem(s, today) is not None:  # str.isdigit() takes full-width digits
            expected["cid"].add(i)
        if not (len(s) >= 6 and s[:6].isascii() and is_known_division(s[:6])):
            expected["div"].add(i)
        shaped = len(s) == 18 and s.isascii() and s[:17].isdigit() and (s[17].isdigit() or s[17] == "X")
        if shaped and row["sex"] in ("1", "男", "2", "女"):
            if gender_from_id(s) != ("1" if row["sex"] in ("1", "男") else "2"):
                expected["sex"].add(i)
    assert failed == expected
    assert 2_000 < len(failed["cid"]) < 18_000  # the mix holds both kinds
