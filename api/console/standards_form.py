"""The data-standard form's pure side: a form's fields as the API's JSON body, the current item as
the form's values, and the API's problems (`{"field": "items.2.label", "msg_zh": ...}`) as errors
next to their fields. No I/O: pages_standards_edit.py sends and renders."""

from __future__ import annotations

import re
from typing import Any

ELEMENT_FIELDS = (
    "name_zh",
    "name_en",
    "definition",
    "data_type",
    "length",
    "min_length",
    "precision",
    "scale",
    "format",
    "unit",
    "code_set",
    "min_value",
    "max_value",
    "category",
    "source_standard",
    "synonyms",
)
CODE_SET_FIELDS = ("name", "description", "source", "items")
FIELDS = {"element": ELEMENT_FIELDS, "code_set": CODE_SET_FIELDS}
TEXTS = {"name_zh", "name", "name_en", "definition", "description", "source"}  # "" rather than null when emptied
INTEGERS = {"length", "min_length", "precision", "scale"}
NUMBERS = {"min_value", "max_value"}
DATA_TYPES = ("string", "integer", "number", "boolean", "date", "datetime")
ITEM_KEYS = ("code", "label", "parent")


def _typed(key: str, text: str) -> Any:
    """A number field's text as a number where it is one; otherwise the text, which the API refuses
    with its own reason ("应为整数") next to the field."""
    if key in INTEGERS and re.fullmatch(r"-?\d{1,12}", text):
        return int(text)
    if key in NUMBERS:
        try:
            return float(text) if "." in text or "e" in text.lower() else int(text)
        except ValueError:
            return text
    return text


def items_of(text: str) -> list[dict[str, str]]:
    """Code items, one a line: `code, label[, parent]` (a tab or a Chinese comma also separates)."""
    items = []
    for line in text.splitlines():
        if not line.strip():
            continue
        parts = [p.strip() for p in re.split(r"[,，\t]", line, maxsplit=2)]
        item = dict(zip(ITEM_KEYS, parts))
        items.append({k: v for k, v in item.items() if v or k != "parent"})
    return items


def items_text(items: list[dict]) -> str:
    return "\n".join(", ".join(str(i.get(k) or "") for k in ITEM_KEYS).rstrip(", ") for i in items or [])


def body_of(kind: str, form) -> dict[str, Any]:
    """Every field of the form as the API wants it (emptied ones as "" or null)."""
    body: dict[str, Any] = {}
    for key in FIELDS[kind]:
        text = str(form.get(key) or "").strip()
        if key == "items":
            body[key] = items_of(text)
        elif key == "synonyms":
            body[key] = [s.strip() for s in re.split(r"[,，、]", text) if s.strip()]
        elif not text:
            body[key] = "" if key in TEXTS else None
        else:
            body[key] = _typed(key, text)
    if kind == "element" and not body.get("data_type"):
        body["data_type"] = "string"
    return body


def changed(body: dict[str, Any], current: dict[str, Any]) -> dict[str, Any]:
    """The keys whose value differs from the current version (None and "" and [] alike are empty)."""
    empty = (None, "", [])
    return {k: v for k, v in body.items() if not (v in empty and current.get(k) in empty) and v != current.get(k)}


def values_of(kind: str, item: dict[str, Any]) -> dict[str, str]:
    """The current version's attributes as the form's texts."""
    values = {}
    for key in FIELDS[kind]:
        value = item.get(key)
        if key == "items":
            values[key] = items_text(value or [])
        elif key == "synonyms":
            values[key] = ", ".join(value or [])
        else:
            values[key] = "" if value is None else str(value)
    return values


def field_errors(problems: list[dict], lang: str, line: str = "%(n)s") -> tuple[dict[str, list[str]], list[str]]:
    """Problems by form field (`items.2.label` goes to `items`, named by `line`, the catalogue's
    "第 %(n)s 行"), and the rest."""
    zh = lang.startswith("zh")
    by_field: dict[str, list[str]] = {}
    rest = []
    for p in problems:
        msg = str(p.get("msg_zh") if zh and p.get("msg_zh") else p.get("msg"))
        parts = str(p.get("field") or "").split(".")
        if parts[0] == "items" and len(parts) > 1 and parts[1].isdigit():
            where = line % {"n": int(parts[1]) + 1}
            msg = f"{where} {'.'.join(parts[2:])}: {msg}".replace(" :", ":")
        if parts[0] in ("code", *ELEMENT_FIELDS, *CODE_SET_FIELDS):
            by_field.setdefault(parts[0], []).append(msg)
        else:
            rest.append(f"{p.get('field')}: {msg}")
    return by_field, rest
