"""Why a file row was refused, in English and Chinese: one catalogue of reason codes.

A refusal is `(code, params)`; `render(code, params, lang)` gives the text. The English text is
what the quarantine record's `reason` and the import report's `reason` hold; `GET /imports/...
?lang=zh` renders the Chinese one from the stored code and params. Params name the department's
own column header (`column`) and quote the offending value (`value`), masked when the column is
sensitive (see `mask`).

Sensitivity: there is no data classification in Huiliu yet. Until there is, a column is treated
as sensitive when its declaration says `sensitive: true`, or (not declared either way) when its
name or header looks like an ID number or a phone number (`SENSITIVE_NAME`); its values are
masked in reasons (`110***********12`), never in the raw row kept for repair.
"""

from __future__ import annotations

import re
from typing import Any

CATALOGUE: dict[str, tuple[str, str]] = {
    "field_count": ("expected {expected} fields, found {found}", "应有 {expected} 个字段，实际 {found} 个"),
    "encoding": (
        "bytes that are not {encoding}{hint}",
        "含有不是 {encoding} 编码的字节{hint_zh}",
    ),
    "required": ("column '{column}' is required but empty", "列“{column}”必填，但为空"),
    "type": ("column '{column}': not a {type_en}: '{value}'", "列“{column}”：“{value}”不是有效的{type_zh}"),
    "decimals": (
        "column '{column}': '{value}' has more than {scale} decimals",
        "列“{column}”：“{value}”的小数位超过 {scale} 位",
    ),
    "format": (
        "column '{column}': '{value}' does not match the declared format {format}",
        "列“{column}”：“{value}”不符合声明的格式 {format}",
    ),
    "extra_fields": ("fields not in the column list: {fields}", "列清单之外的字段：{fields}"),
    "extra_values": (
        "{count} value(s) beyond the {named} named columns",
        "在 {named} 个具名列之外还有 {count} 个值",
    ),
    "not_json": ("not JSON: {detail}", "不是合法的 JSON：{detail}"),
    "not_object": ("expected a JSON object, found {found}", "应为 JSON 对象，实际为 {found}"),
    "xml_broken": ("XML element is not well formed: {detail}", "XML 元素格式错误：{detail}"),
    "line_short": (
        "line has {length} characters, the layout needs {need}",
        "该行只有 {length} 个字符，布局需要 {need} 个",
    ),
    "not_array": ("field '{path}' is not an array: {found}", "字段“{path}”不是数组，实际为 {found}"),
    "child_row": ("array '{path}' item {index}: {detail}", "数组“{path}”第 {index} 项：{detail_zh}"),
    "other": ("{detail}", "{detail}"),
}

TYPE_ZH = {
    "integer": "整数",
    "int": "整数",
    "bigint": "整数",
    "decimal": "数值",
    "numeric": "数值",
    "float": "数值",
    "double": "数值",
    "date": "日期",
    "datetime": "日期时间",
    "timestamp": "日期时间",
    "time": "时间",
    "boolean": "布尔值",
    "bool": "布尔值",
}

LABELS: dict[str, tuple[str, str]] = {
    "field_count": ("wrong number of fields", "字段个数不符"),
    "encoding": ("bytes not in the file's encoding", "编码错误"),
    "required": ("required value empty", "必填项为空"),
    "type": ("value of the wrong type", "值的类型不符"),
    "decimals": ("too many decimals", "小数位过多"),
    "format": ("value not in the declared format", "不符合声明的格式"),
    "extra_fields": ("fields not in the column list", "多余的字段"),
    "extra_values": ("values beyond the named columns", "多余的值"),
    "not_json": ("not JSON", "不是 JSON"),
    "not_object": ("not a JSON object", "不是 JSON 对象"),
    "xml_broken": ("malformed XML element", "XML 元素格式错误"),
    "line_short": ("line too short for the layout", "行长度不足"),
    "other": ("other", "其他"),
}


def label(code: str, column: str | None, lang: str = "en") -> str:
    """A reason group's name: what went wrong, and in which column."""
    en, zh = LABELS.get(code, (code, code))
    if lang.startswith("zh"):
        return f"列“{column}”：{zh}" if column else zh
    return f"column '{column}': {en}" if column else en


SENSITIVE_NAME = re.compile(
    r"身份证|证件|护照|手机|电话|联系方式|id_?card|id_?no|idnum|cert|passport|phone|mobile|tel\b|telephone",
    re.IGNORECASE,
)
VALUE_LIMIT = 60  # characters of a value quoted in a reason


def looks_sensitive(*names: str | None) -> bool:
    return any(n and SENSITIVE_NAME.search(n) for n in names)


def mask(value: str) -> str:
    """Keep the first 3 and last 2 characters of a value of 8 or more, stars in between; shorter ones all stars."""
    if len(value) < 8:
        return "*" * len(value)
    return value[:3] + "*" * (len(value) - 5) + value[-2:]


def quote(value: Any, sensitive: bool = False) -> str:
    text = value if isinstance(value, str) else str(value)
    if sensitive:
        return mask(text)
    return text if len(text) <= VALUE_LIMIT else text[:VALUE_LIMIT] + "…"


def render(code: str, params: dict[str, Any] | None, lang: str = "en") -> str:
    en, zh = CATALOGUE.get(code, CATALOGUE["other"])
    p = {"detail": "", "hint": "", "hint_zh": "", **(params or {})}
    if "type" in p:
        p.setdefault("type_zh", TYPE_ZH.get(str(p["type"]), str(p["type"])))
        p.setdefault("type_en", {"integer": "whole number", "float": "number"}.get(str(p["type"]), str(p["type"])))
    if p.get("suggest"):
        p["hint"] = p["hint"] or f"; the file may be {p['suggest']} (set format.encoding: {p['suggest']})"
        p["hint_zh"] = p["hint_zh"] or f"；文件可能是 {p['suggest']} 编码（可设置 format.encoding: {p['suggest']}）"
    try:
        return (zh if lang.startswith("zh") else en).format(**p)
    except (KeyError, IndexError, ValueError):
        return en.format_map(_Lenient(p))


class _Lenient(dict):
    def __missing__(self, key: str) -> str:
        return "{" + key + "}"
