"""JSON lines, and JSON arrays streamed with ijson (a 1 GB array is never loaded whole)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import BinaryIO

from connectors.files.encoding import detect
from connectors.files.formats import FileFormatError, FormatConfig, Record, Refusal
from connectors.files.formats.text import _encoding_refusal


def read_jsonl(stream: BinaryIO, fmt: FormatConfig, notes: dict | None = None) -> Iterator[Record]:
    enc = detect(stream, fmt.encoding)
    if notes is not None:
        notes["encoding"] = enc
    detected = fmt.encoding.lower() == "auto"
    row = 0
    for line_no, data in enumerate(stream, 1):
        if not data.strip():
            continue
        row += 1
        try:
            line = data.decode(enc)
        except UnicodeDecodeError:
            fallback = fmt.fallback_encoding if detected and enc in ("utf-8", "utf-8-sig") else None
            try:
                if fallback is None:
                    raise
                line = data.decode(fallback)
            except (UnicodeDecodeError, LookupError):
                yield row, line_no, None, _encoding_refusal(enc, data), data
                continue
            if notes is not None:  # the rest of the file in the fallback encoding, recorded
                notes["encoding_switch"] = {"from": enc, "to": fallback, "line": line_no}
                notes["encoding"] = fallback
            enc = fallback
        try:
            value = json.loads(line)
        except ValueError as exc:
            yield row, line_no, None, Refusal("not_json", detail=str(exc)), data
            continue
        if not isinstance(value, dict):
            yield row, line_no, None, Refusal("not_object", found=type(value).__name__), data
            continue
        yield row, line_no, value, None, data


def read_json(stream: BinaryIO, fmt: FormatConfig, notes: dict | None = None) -> Iterator[Record]:
    try:
        import ijson
    except ImportError:  # pragma: no cover - ijson is a dependency of this connector
        raise FileFormatError("JSON arrays need the ijson package for streaming (pip install ijson)") from None
    prefix = fmt.record_path or "item"
    row = 0
    try:
        for value in ijson.items(stream, prefix):
            row += 1
            raw = json.dumps(value, ensure_ascii=False, default=str)
            if not isinstance(value, dict):
                yield row, row, None, Refusal("not_object", found=type(value).__name__), raw
                continue
            yield row, row, value, None, raw  # ijson gives no line numbers: `line` is the item index
    except ijson.JSONError as exc:
        raise FileFormatError(f"JSON is not well formed after item {row}: {exc}") from None
