"""Readers: each turns a binary stream into records `(row, line, fields | None, error | None)`.

`row` counts records from 1 in file order (the resume position); `line` is the physical line
(or XML source line, or Excel row) for the quarantine report; a record that cannot be parsed
has `fields=None` and the reason in `error`, and reading goes on. A file-level problem (XML
that is not well formed, a corrupt xlsx) raises `FileFormatError` after the rows before it.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any, BinaryIO

from pydantic import BaseModel, ConfigDict, Field

Record = tuple[int, int, dict[str, Any] | None, str | None]


class FileFormatError(ValueError):
    pass


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
    sheet: str | None = Field(None, description="xlsx: sheet name; default the first")
    fields: list[FixedField] = Field(default_factory=list, description="fixed: the field layout")
    strip: bool = Field(True, description="fixed/csv: strip surrounding blanks from values")


def read_records(stream: BinaryIO, fmt: FormatConfig) -> Iterator[Record]:
    kind = fmt.kind
    if kind in ("csv", "tsv"):
        from connectors.files.formats.text import read_csv

        return read_csv(stream, fmt)
    if kind == "fixed":
        from connectors.files.formats.text import read_fixed

        return read_fixed(stream, fmt)
    if kind == "xml":
        from connectors.files.formats.xmldoc import read_xml

        return read_xml(stream, fmt)
    if kind == "xlsx":
        from connectors.files.formats.excel import read_xlsx

        return read_xlsx(stream, fmt)
    from connectors.files.formats.jsondoc import read_json, read_jsonl

    return read_jsonl(stream, fmt) if kind == "jsonl" else read_json(stream, fmt)
