"""Masking functions and per-role MaskPolicy."""

from __future__ import annotations

import hashlib
import hmac

import polars as pl
import pytest

from streams.transforms.masking import (
    MaskPolicy,
    compound_surnames,
    email,
    format_preserving,
    hash_value,
    id_number,
    keep,
    name,
    phone,
    resolve,
)


def test_keep_first_last_id_number():
    assert keep("370102199003071234", 6, 4) == "370102********1234"
    assert id_number("11010519491231002X") == "110105********002X"
    assert keep("12", 3, 4) == "1*"


def test_name_masking_single_and_compound_surnames():
    assert name("张三") == "张*"
    assert name("张三丰") == "张**"
    assert name("欧阳娜娜") == "欧阳**"
    assert name("司马懿") == "司马*"
    assert name("司马") == "司*"  # two characters: 司 surname + 马 given name
    assert name("李") == "*"
    assert {"欧阳", "诸葛", "上官"} <= compound_surnames()


def test_phone_and_email():
    assert phone("13812345678") == "138****5678"
    assert phone("+8613812345678") == "+86138****5678"
    assert email("zhangsan@example.com") == "z***@example.com"
    assert email("a@gov.cn") == "a***@gov.cn"


def test_hmac_hash_uses_secret():
    expected = hmac.new(b"k1", b"11010519491231002X", hashlib.sha256).hexdigest()
    assert hash_value("11010519491231002X", "k1") == expected
    assert hash_value("x", "k1") != hash_value("x", "k2")
    with pytest.raises(ValueError):
        hash_value("x", "")


def test_format_preserving_is_deterministic_and_keeps_shape():
    a = format_preserving("AB-1234-cd@张三", "key")
    assert a == format_preserving("AB-1234-cd@张三", "key")
    assert a != format_preserving("AB-1234-cd@张三", "other")
    assert len(a) == 13 and a[2] == "-" and a[7] == "-" and a[10:] == "@张三"
    assert a[:2].isupper() and a[3:7].isdigit() and a[8:10].islower()
    assert format_preserving("13812345678", "key").isdigit()


def test_mask_policy_per_role(monkeypatch):
    monkeypatch.setenv("HUILIU_TEST_SALT", "s3cret")
    policy = MaskPolicy(
        {
            "analyst": {
                "name": "name",
                "id": "id_number",
                "phone": "phone",
                "pid": {"fn": "hash", "secret_ref": "HUILIU_TEST_SALT"},
            },
            "auditor": {"name": "clear", "id": {"fn": "keep", "first": 0, "last": 4}},
            "default": {"name": "redact", "id": "null", "phone": "redact", "pid": "null"},
        }
    )
    row = {"name": "张三", "id": "11010519491231002X", "phone": "13812345678", "pid": "A1", "age": 30}
    a = policy.mask_row(row, "analyst")
    assert a == {
        "name": "张*",
        "id": "110105********002X",
        "phone": "138****5678",
        "pid": hash_value("A1", "s3cret"),
        "age": 30,
    }
    b = policy.mask_row(row, "auditor")
    assert b["name"] == "张三" and b["id"] == "**************002X" and b["phone"] == "13812345678"
    c = policy.mask_row(row, "someone_else")
    assert c["name"] == "**" and c["id"] is None and c["pid"] is None
    df = policy.mask_frame(pl.DataFrame([row, {**row, "name": None}]), "analyst")
    assert df["name"].to_list() == ["张*", None]


def test_policy_without_default_refuses_unknown_role():
    policy = MaskPolicy({"analyst": {"name": "name"}})
    with pytest.raises(KeyError):
        policy.mask_row({"name": "张三"}, "intern")


def test_bad_mask_specs():
    with pytest.raises(ValueError, match="unknown mask function"):
        resolve("scramble")
    with pytest.raises(ValueError, match="secret"):
        resolve({"fn": "hash"})
    with pytest.raises(ValueError, match="takes no options"):
        resolve({"fn": "phone", "first": 3})
