"""Data elements as an Excel workbook (.xlsx), the form standards offices exchange.

    data = export_elements(elements)                  # bytes: one sheet 数据元, a header row, a row per element
    rows, errors = read_elements(data)                # [(row number, ElementSpec)], [{row, column, field, msg, msg_zh}]

The header row names each column by attribute (`code`) or Chinese label (`代码`), or both
(`代码 code`); columns are found by name, in any order; version and status are exported for
reading and ignored on import. Every bad cell is reported with its row and column; a file with
any error yields no elements (the caller applies nothing).
"""

from __future__ import annotations

import io
from typing import Any

from openpyxl import Workbook, load_workbook
from openpyxl.utils import get_column_letter
from pydantic import ValidationError

from quality_stream.governance.model import ElementSpec, problems_of

COLUMNS: list[tuple[str, str]] = [
    ("code", "代码"),
    ("name_zh", "中文名称"),
    ("name_en", "英文名称"),
    ("definition", "定义"),
    ("data_type", "数据类型"),
    ("length", "长度"),
    ("min_length", "最小长度"),
    ("precision", "精度"),
    ("scale", "小数位数"),
    ("format", "格式"),
    ("unit", "计量单位"),
    ("code_set", "代码集"),
    ("min_value", "最小值"),
    ("max_value", "最大值"),
    ("category", "分类"),
    ("source_standard", "来源标准"),
    ("synonyms", "同义词"),
]
READ_ONLY = [("version", "版本"), ("status", "状态")]
SHEET = "数据元"
MAX_ROWS = 10_000
LIST_SEP = ";"


def _header(attr: str, label: str) -> str:
    return f"{label} {attr}"


def export_elements(elements: list[dict[str, Any]]) -> bytes:
    wb = Workbook()
    ws = wb.active
    ws.title = SHEET
    columns = COLUMNS + READ_ONLY
    ws.append([_header(a, label) for a, label in columns])
    for element in elements:
        row = []
        for attr, _ in columns:
            value = element.get(attr)
            row.append(LIST_SEP.join(value) if isinstance(value, list) else value)
        ws.append(row)
    for i, (attr, _) in enumerate(columns, start=1):
        ws.column_dimensions[get_column_letter(i)].width = 40 if attr == "definition" else 16
    ws.freeze_panes = "A2"
    out = io.BytesIO()
    wb.save(out)
    return out.getvalue()


def _error(row: int, column: str, field: str, msg: str, msg_zh: str) -> dict[str, Any]:
    return {"row": row, "column": column, "field": field, "msg": msg, "msg_zh": msg_zh}


def _attribute(title: Any) -> str | None:
    text = str(title or "").strip()
    for attr, label in COLUMNS + READ_ONLY:
        if text in (attr, label, _header(attr, label)):
            return attr
    return None


def _cell(attr: str, value: Any) -> Any:
    if isinstance(value, str):
        value = value.strip()
        if value == "":
            return None
    if attr == "synonyms":
        return [s.strip() for s in str(value).split(LIST_SEP) if s.strip()] if value is not None else []
    if attr in (
        "code",
        "name_zh",
        "name_en",
        "definition",
        "format",
        "unit",
        "code_set",
        "category",
        "source_standard",
    ):
        if isinstance(value, float) and value.is_integer():
            value = int(value)
        return None if value is None else str(value)
    return value


def read_elements(data: bytes) -> tuple[list[tuple[int, ElementSpec]], list[dict[str, Any]]]:
    try:
        wb = load_workbook(io.BytesIO(data), read_only=True, data_only=True)
    except Exception:  # openpyxl raises many kinds for a file that is not a workbook
        return [], [_error(0, "", "file", "not an Excel workbook (.xlsx)", "不是 Excel 工作簿（.xlsx）")]
    ws = wb[SHEET] if SHEET in wb.sheetnames else wb.worksheets[0]
    rows = ws.iter_rows(values_only=True)
    header = next(rows, None)
    if header is None:
        return [], [_error(1, "", "header", "the sheet is empty", "工作表为空")]
    columns: dict[int, str] = {}
    errors = []
    for i, title in enumerate(header):
        if title is None or str(title).strip() == "":
            continue
        attr = _attribute(title)
        letter = get_column_letter(i + 1)
        if attr is None:
            errors.append(
                _error(1, letter, "header", f"unknown column {str(title)[:50]!r}", f"不认识的列 {str(title)[:50]!r}")
            )
        elif attr in columns.values():
            errors.append(_error(1, letter, attr, f"column {attr} appears twice", f"列 {attr} 重复"))
        else:
            columns[i] = attr
    for needed in ("code", "name_zh"):
        if needed not in columns.values():
            errors.append(_error(1, "", needed, f"no column {needed}", f"缺少列 {needed}"))
    if errors:
        return [], errors
    letters = {attr: get_column_letter(i + 1) for i, attr in columns.items()}
    out: list[tuple[int, ElementSpec]] = []
    first_row: dict[str, int] = {}
    for number, values in enumerate(rows, start=2):
        if number > MAX_ROWS + 1:
            errors.append(_error(number, "", "file", f"more than {MAX_ROWS} rows", f"超过 {MAX_ROWS} 行"))
            break
        record = {attr: _cell(attr, values[i]) for i, attr in columns.items() if i < len(values)}
        if all(v in (None, []) for v in record.values()):
            continue
        record = {k: v for k, v in record.items() if v is not None and k not in ("version", "status")}
        try:
            spec = ElementSpec.model_validate(record)
        except ValidationError as exc:
            for p in problems_of(exc):
                attr = p["field"].split(".")[0]
                errors.append(_error(number, letters.get(attr, ""), p["field"], p["msg"], p["msg_zh"]))
            continue
        if spec.code in first_row:
            errors.append(
                _error(
                    number,
                    letters["code"],
                    "code",
                    f"code {spec.code!r} is already on row {first_row[spec.code]}",
                    f"代码 {spec.code!r} 与第 {first_row[spec.code]} 行重复",
                )
            )
            continue
        first_row[spec.code] = number
        out.append((number, spec))
    if not out and not errors:
        errors.append(_error(2, "", "file", "no elements in the sheet", "工作表中没有数据元"))
    return ([] if errors else out), errors
