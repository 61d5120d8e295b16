"""JSON lines, and JSON arrays streamed with ijson (a 1 GB array is never loaded whole)."""

from __future__ import annotations

import io
import json
from collections.abc import Iterator
from typing import BinaryIO

from connectors.files.encoding import detect
from connectors.files.formats import FileFormatError, FormatConfig, Record


def read_jsonl(stream: BinaryIO, fmt: FormatConfig) -> Iterator[Record]:
    text = io.TextIOWrapper(stream, encoding=detect(stream, fmt.encoding), errors="replace", newline=None)
    row = 0
    for line_no, line in enumerate(text, 1):
        if not line.strip():
            continue
        row += 1
        if "\ufffd" in line:
            yield row, line_no, None, "bytes that are not valid in the file's encoding"
            continue
        try:
            value = json.loads(line)
        except ValueError as exc:
            yield row, line_no, None, f"not JSON: {exc}"
            continue
        if not isinstance(value, dict):
            yield row, line_no, None, f"expected a JSON object, found {type(value).__name__}"
            continue
        yield row, line_no, value, None


def read_json(stream: BinaryIO, fmt: FormatConfig) -> Iterator[Record]:
    try:
        import ijson
    except ImportError:  # pragma: no cover - ijson is a dependency of this connector
        raise FileFormatError("JSON arrays need the ijson package for streaming (pip install ijson)") from None
    prefix = fmt.record_path or "item"
    row = 0
    try:
        for value in ijson.items(stream, prefix):
            row += 1
            if not isinstance(value, dict):
                yield row, row, None, f"expected a JSON object, found {type(value).__name__}"
                continue
            yield row, row, value, None  # ijson gives no line numbers: `line` is the item index
    except ijson.JSONError as exc:
        raise FileFormatError(f"JSON is not well formed after item {row}: {exc}") from None
