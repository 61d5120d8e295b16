"""Readers: each turns a binary stream into records `(row, line, fields | None, error | None, raw)`.

`row` counts records from 1 in file order (the resume position); `line` is the physical line
(or XML source line, or Excel row) for the quarantine report; a record that cannot be parsed
has `fields=None` and the reason in `error` (a `Refusal`: English text, catalogue code and
params), and reading goes on. `raw` is the record as it stood in the file: `bytes` (the original
bytes of a text line, an XML element) or `str` (an xlsx row's cells joined by tabs, a JSON array
item), kept with refused rows so they can be repaired without the file. A file-level problem
(XML that is not well formed without `recover`, a corrupt xlsx) raises `FileFormatError` after
the rows before it.

`notes` (a dict the caller passes) receives what the reader decided: `encoding` (and
`encoding_switch` {from, to, line} when a file detected as UTF-8 turned out to be GB18030 later),
`sheet`, `header_line`, `title_rows`, `columns` (the header as written), `skipped` (rows left out
by `skip_patterns`: line, pattern, text; the first 100) and `skipped_count`, `broken_elements`.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any, BinaryIO

from pydantic import BaseModel, ConfigDict, Field, model_validator

from connectors.files.messages import render

Record = tuple[int, int, dict[str, Any] | None, "Refusal | None", "bytes | str | None"]


class FileFormatError(ValueError):
    pass


class FormatConfigError(ValueError):
    """The format config cannot work (a task finding this fails at once: no retry fixes it)."""

    config_error = True


class Refusal(str):
    """A reader's reason (the English text) with its catalogue code and params."""

    code: str
    params: dict

    def __new__(cls, code: str, **params):
        self = super().__new__(cls, render(code, params))
        self.code, self.params = code, params
        return self


# Rows that are not data in spreadsheets made by people, matched against a row's first non-empty
# cell with its blanks removed: totals, then the footer block (who filled it in, when, notes).
DEFAULT_SKIP_PATTERNS = [
    r"^(合计|小计|总计|共计|累计|总合计)",
    r"^(填报单位|填表单位|报送单位|填报人|填表人|制表人|制表|审核人|审核|负责人|单位负责人|统计负责人|"
    r"联系人|联系电话|填报日期|填表日期|制表日期|报送日期)[:：]",
    r"^(注|说明|备注|附注)[:：]",
]


class FixedField(BaseModel):
    model_config = ConfigDict(extra="forbid")
    name: str
    start: int = Field(ge=0, description="0-based character offset")
    width: int = Field(gt=0)


class FormatConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")

    kind: str = Field("csv", pattern="^(csv|tsv|xml|xlsx|jsonl|json|fixed)$")
    encoding: str = Field("auto", description="auto = detect (utf-8, GB18030/GBK, ...); XML uses its declaration")
    delimiter: str | None = Field(None, description="csv: default ',' (tsv: tab)")
    quotechar: str = '"'
    header: bool = Field(True, description="csv/xlsx: first row names the fields")
    skip_rows: int = Field(0, ge=0, description="rows to skip before the header (titles in spreadsheets)")
    record_path: str | None = Field(
        None,
        description="xml: element path of one record, e.g. /root/items/item or "
        "ns:item; json: ijson prefix of the array items (default item)",
    )
    namespaces: dict[str, str] = Field(default_factory=dict, description="xml: prefix -> namespace URI")
    sheet: str | int | None = Field(None, description="xlsx: sheet name, or its 0-based index; default the first")
    header_detect: bool = Field(
        True,
        description="csv/xlsx with header and skip_rows 0: the header is the first of the first "
        "`header_search_rows` rows with 2+ cells filled and at least half of its own width filled (or the "
        "row naming most declared columns); rows above it are title rows, reported",
    )
    header_search_rows: int = Field(10, ge=1, le=100)
    skip_patterns: list[str] = Field(
        default_factory=lambda: list(DEFAULT_SKIP_PATTERNS),
        description="csv/xlsx: regexes; a row whose first non-empty cell (blanks removed) matches one is "
        "not data (totals, footers) and is reported as skipped; [] keeps every row",
    )
    fallback_encoding: str | None = Field(
        "gb18030",
        description="encoding auto: when a file detected as UTF-8 has a line that is not, and the line "
        "decodes in this encoding, the rest of the file is read in it (reported); null = never",
    )
    recover: bool = Field(
        False, description="xml: skip a malformed record element (counted bad, with its line) and go on"
    )

    @model_validator(mode="after")
    def _valid(self) -> FormatConfig:
        return _check(self)

    fields: list[FixedField] = Field(default_factory=list, description="fixed: the field layout")
    strip: bool = Field(True, description="fixed/csv: strip surrounding blanks from values")


def _check(fmt: FormatConfig) -> FormatConfig:
    if fmt.kind == "fixed" and not fmt.fields:
        raise ValueError("fixed-width format needs `fields` (name, start, width)")
    for pattern in fmt.skip_patterns:
        try:
            re.compile(pattern)
        except re.error as exc:
            raise ValueError(f"skip_patterns: {pattern!r} is not a regular expression: {exc}") from None
    return fmt


def read_records(
    stream: BinaryIO, fmt: FormatConfig, notes: dict | None = None, declared: set[str] | None = None
) -> Iterator[Record]:
    """`declared`: the field names the connector's columns read (help to find the header row)."""
    kind, notes = fmt.kind, notes if notes is not None else {}
    if kind in ("csv", "tsv"):
        from connectors.files.formats.text import read_csv

        return read_csv(stream, fmt, notes, declared)
    if kind == "fixed":
        from connectors.files.formats.text import read_fixed

        return read_fixed(stream, fmt, notes)
    if kind == "xml":
        from connectors.files.formats.xmldoc import read_xml

        return read_xml(stream, fmt, notes)
    if kind == "xlsx":
        from connectors.files.formats.excel import read_xlsx

        return read_xlsx(stream, fmt, notes, declared)
    from connectors.files.formats.jsondoc import read_json, read_jsonl

    return read_jsonl(stream, fmt, notes) if kind == "jsonl" else read_json(stream, fmt, notes)
