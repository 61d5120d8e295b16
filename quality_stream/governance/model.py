"""What a data element and a code set are, as validated documents, and the problems a bad one has.

    ElementSpec.model_validate({...})    CodeSetSpec.model_validate({...})
    problems_of(exc, prefix)             # pydantic errors -> [{"field", "msg", "msg_zh"}]
    StandardsError(problems)             # what the store raises; `.problems` names every field

Element attributes: code, name_zh, name_en, definition, data_type (the rule engine's types),
length / min_length, precision / scale, format (a regular expression the whole value matches),
unit, code_set (a code set's code), min_value / max_value, category (a category code),
source_standard (e.g. GB/T 2261.1-2003), synonyms (names the mapping suggestion also reads).
"""

from __future__ import annotations

import datetime as dt
import re
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

CODE_PATTERN = r"^[A-Za-z][A-Za-z0-9_.\-]{0,99}$"
DATA_TYPES = ("string", "integer", "number", "boolean", "date", "datetime")
STATUSES = ("draft", "in_review", "published", "superseded", "retired")
MAX_ITEMS = 100_000

_ZH = {  # pydantic error type -> Chinese
    "missing": "缺少必填项",
    "extra_forbidden": "不认识的属性",
    "string_pattern_mismatch": "格式不符合要求",
    "string_too_long": "内容过长",
    "string_too_short": "不能为空",
    "string_type": "应为文本",
    "int_type": "应为整数",
    "int_parsing": "应为整数",
    "float_type": "应为数字",
    "float_parsing": "应为数字",
    "greater_than_equal": "数值过小",
    "less_than_equal": "数值过大",
    "literal_error": "取值不在允许范围内",
    "date_parsing": "应为日期（YYYY-MM-DD）",
    "date_from_datetime_parsing": "应为日期（YYYY-MM-DD）",
    "date_type": "应为日期（YYYY-MM-DD）",
    "too_long": "条目过多",
    "list_type": "应为列表",
}


class StandardsError(ValueError):
    """A request the standards store refuses; `problems` name each field, in English and Chinese."""

    def __init__(self, problems: list[dict[str, str]]):
        super().__init__("; ".join(f"{p['field']}: {p['msg']}" for p in problems))
        self.problems = problems


def problem(field: str, msg: str, msg_zh: str) -> dict[str, str]:
    return {"field": field, "msg": msg, "msg_zh": msg_zh}


def problems_of(exc: ValidationError, prefix: str = "") -> list[dict[str, str]]:
    out = []
    for e in exc.errors():
        loc = ".".join(str(p) for p in e["loc"] if p != "__root__")
        field = ".".join(p for p in (prefix, loc) if p) or prefix or "body"
        msg = e["msg"].removeprefix("Value error, ")
        if SEP in msg:  # a Bilingual complaint: [field,] English, Chinese
            *named, msg, zh = msg.split(SEP)
            field = ".".join(p for p in (prefix, loc, *named[:1]) if p) or "body"
            out.append(problem(field, msg, zh))
            continue
        out.append(problem(field, msg, _ZH.get(e["type"], "取值无效")))
    return out


SEP = "\x1f"


class Bilingual(ValueError):
    """A validator's complaint in English and Chinese, naming the field when a model check makes it."""

    def __init__(self, en: str, zh: str, field: str | None = None):
        super().__init__(SEP.join([*([field] if field else []), en, zh]))


Code = Field(pattern=CODE_PATTERN, description="letters, digits, _ . - ; starts with a letter; at most 100")


class ElementSpec(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    code: str = Code
    name_zh: str = Field(min_length=1, max_length=200)
    name_en: str = Field("", max_length=200)
    definition: str = Field("", max_length=4000)
    data_type: Literal["string", "integer", "number", "boolean", "date", "datetime"] = "string"
    length: int | None = Field(None, ge=1, le=1_000_000, description="maximum length in characters")
    min_length: int | None = Field(None, ge=0, le=1_000_000)
    precision: int | None = Field(None, ge=1, le=76, description="total digits (number)")
    scale: int | None = Field(None, ge=0, le=76, description="digits after the point (number)")
    format: str | None = Field(None, max_length=1000, description="a regular expression the whole value matches")
    unit: str | None = Field(None, max_length=100)
    code_set: str | None = Field(None, pattern=CODE_PATTERN)
    min_value: float | None = None
    max_value: float | None = None
    category: str | None = Field(None, pattern=CODE_PATTERN)
    source_standard: str | None = Field(None, max_length=200)
    synonyms: list[str] = Field(default_factory=list, max_length=50)

    @field_validator("format")
    @classmethod
    def _regex(cls, value: str | None) -> str | None:
        if value:
            try:
                re.compile(value)
            except re.error as exc:
                raise Bilingual(f"not a regular expression: {exc}", f"不是有效的正则表达式：{exc}") from None
        return value or None

    @model_validator(mode="after")
    def _consistent(self) -> ElementSpec:
        if self.min_value is not None and self.max_value is not None and self.min_value > self.max_value:
            raise Bilingual("min_value is above max_value", "最小值大于最大值", "min_value")
        if self.min_length is not None and self.length is not None and self.min_length > self.length:
            raise Bilingual("min_length is above length", "最小长度大于长度", "min_length")
        if self.scale is not None and self.precision is not None and self.scale > self.precision:
            raise Bilingual("scale is above precision", "小数位数大于精度", "scale")
        if (self.min_value is not None or self.max_value is not None) and self.data_type not in ("integer", "number"):
            raise Bilingual(
                "a value range needs data_type integer or number", "取值范围只适用于整数或数值类型", "data_type"
            )
        return self


class CodeItem(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    code: str = Field(min_length=1, max_length=100)
    label: str = Field(min_length=1, max_length=500)
    parent: str | None = Field(None, max_length=100)
    valid_from: dt.date | None = None
    valid_to: dt.date | None = None

    @model_validator(mode="after")
    def _dates(self) -> CodeItem:
        if self.valid_from and self.valid_to and self.valid_from > self.valid_to:
            raise Bilingual("valid_from is after valid_to", "生效日期晚于失效日期", "valid_from")
        return self


class CodeSetSpec(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    code: str = Code
    name: str = Field(min_length=1, max_length=200)
    description: str = Field("", max_length=4000)
    source: str = Field("", max_length=1000, description="provenance: the standard and where the values came from")
    items: list[CodeItem] = Field(min_length=1, max_length=MAX_ITEMS)

    @model_validator(mode="after")
    def _items(self) -> CodeSetSpec:
        seen: set[str] = set()
        for item in self.items:
            if item.code in seen:
                raise Bilingual(f"code {item.code!r} appears twice", f"代码 {item.code!r} 重复", "items")
            seen.add(item.code)
        orphans = sorted({i.parent for i in self.items if i.parent and i.parent not in seen})
        if orphans:
            raise Bilingual(
                f"parent {orphans[0]!r} is not a code of this set", f"上级代码 {orphans[0]!r} 不在本代码集中", "items"
            )
        return self

    def codes(self, on: dt.date | None = None) -> list[str]:
        """The codes valid on `on` (default: every code)."""
        return [
            i.code
            for i in self.items
            if on is None or ((i.valid_from is None or i.valid_from <= on) and (i.valid_to is None or on <= i.valid_to))
        ]


def body_of(spec: BaseModel) -> dict[str, Any]:
    """What a version stores: the attributes without the code (the row has it), JSON-ready."""
    return spec.model_dump(mode="json", exclude={"code"})
