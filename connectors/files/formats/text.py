"""CSV/TSV and fixed-width text, in any encoding (detected when `encoding: auto`).

Lines are read as bytes and decoded one by one (ASCII-compatible encodings), so each record keeps
its original bytes (`raw`) and the encoding can change mid-file: a file detected as UTF-8 from its
first 256 KB whose later line is not UTF-8 but decodes as `fallback_encoding` (GB18030) is read
in that from there on, and `notes["encoding_switch"]` says where. Bytes that still do not decode
are kept as surrogate escapes and the row is refused with the reason (and the encoding the line
does decode in, if any), so one bad byte costs one row, not the whole file and not silently.
"""

from __future__ import annotations

import codecs
import csv
import io
import re
import sys
from collections.abc import Iterator
from typing import BinaryIO

from connectors.files.encoding import detect
from connectors.files.formats import FormatConfig, FormatConfigError, Record, Refusal
from connectors.files.formats.layout import Skipper, choose_header

_BAD = re.compile("[\udc80-\udcff]")
csv.field_size_limit(min(sys.maxsize, 2**31 - 1))
_ASCII_COMPATIBLE = ("utf-8", "utf-8-sig", "gb18030", "gbk", "big5", "big5hkscs", "latin-1", "iso8859-1", "cp1252")
_SUGGEST = ("utf-8", "gb18030", "big5")


class _Lines:
    """Decoded lines of a binary stream; remembers the bytes of the lines read since `take()`."""

    def __init__(self, stream: BinaryIO, enc: str, fallback: str | None, notes: dict):
        self.stream, self.enc, self.fallback, self.notes = stream, enc, fallback, notes
        self.raw: list[bytes] = []
        self.line = 0
        self.first = True

    def __iter__(self):
        enc, raw = self.enc, self.raw
        fallback = self.fallback if enc in ("utf-8", "utf-8-sig") else None
        for data in self.stream:
            self.line += 1
            raw.append(data)
            if self.first:
                self.first = False
                if enc == "utf-8-sig" and data.startswith(codecs.BOM_UTF8):
                    data = data[3:]
            try:
                text = data.decode(enc)
            except UnicodeDecodeError:
                if fallback is not None and _decodes(data, fallback):
                    self.notes["encoding_switch"] = {"from": enc, "to": fallback, "line": self.line}
                    self.notes["encoding"] = enc = self.enc = fallback
                    fallback = None
                text = data.decode(enc, "surrogateescape")
            yield text

    def take(self) -> bytes:
        data = b"".join(self.raw)
        self.raw.clear()
        return data


def _decodes(data: bytes, enc: str) -> bool:
    try:
        data.decode(enc)
        return True
    except UnicodeDecodeError:
        return False


def _encoding_refusal(enc: str, data: bytes) -> Refusal:
    suggest = next((e for e in _SUGGEST if e != enc and _decodes(data, e)), None)
    return Refusal("encoding", encoding=enc, suggest=suggest) if suggest else Refusal("encoding", encoding=enc)


def _lines(stream: BinaryIO, fmt: FormatConfig, notes: dict):
    enc = detect(stream, fmt.encoding)
    notes["encoding"] = enc
    detected = fmt.encoding.lower() == "auto"
    if codecs.lookup(enc).name not in _ASCII_COMPATIBLE and enc != "utf-8-sig":
        return None, io.TextIOWrapper(stream, encoding=enc, errors="surrogateescape", newline=""), enc
    lines = _Lines(stream, enc, fmt.fallback_encoding if detected else None, notes)
    return lines, lines, enc


def read_csv(stream: BinaryIO, fmt: FormatConfig, notes: dict, declared: set[str] | None = None) -> Iterator[Record]:
    lines, text, enc = _lines(stream, fmt, notes)
    delimiter = fmt.delimiter or ("\t" if fmt.kind == "tsv" else ",")
    reader = csv.reader(iter(text), delimiter=delimiter, quotechar=fmt.quotechar)

    def take() -> bytes | None:
        return lines.take() if lines is not None else None

    for _ in range(fmt.skip_rows):
        next(reader, None)
    take()
    ahead: list[tuple[list[str], int, bytes | None]] = []  # rows read to find the header
    names = None
    if fmt.header:
        if fmt.header_detect and not fmt.skip_rows:
            for values in reader:
                if values and any(v.strip() for v in values):
                    ahead.append((values, reader.line_num, take()))
                    if len(ahead) >= fmt.header_search_rows:
                        break
                else:
                    take()
            at = choose_header([[v.strip() for v in a[0]] for a in ahead], declared)
            notes["title_rows"] = [
                {"line": line, "text": " ".join(v.strip() for v in values if v.strip())[:200]}
                for values, line, _ in ahead[:at]
            ]
            header = ahead[at][0] if ahead else None
            if ahead:
                notes["header_line"] = ahead[at][1]
            ahead = ahead[at + 1 :]
        else:
            header = next(reader, None)
            notes["header_line"] = reader.line_num
            take()
        if header is None:
            return
        names = [h.strip().lstrip("\ufeff") for h in header]
        notes["columns"] = names
    skip = Skipper(fmt.skip_patterns, notes)
    row = 0
    strip = fmt.strip

    def rows():
        yield from ahead
        for values in reader:
            yield values, reader.line_num, take()

    for values, line, raw in rows():
        if not values or not any(values):
            continue  # blank line
        if skip(values, line):
            continue
        row += 1
        if names is None:
            names = [f"col{i + 1}" for i in range(len(values))]
            notes["columns"] = names
        joined = "".join(values)
        if _BAD.search(joined):
            yield row, line, None, _encoding_refusal(lines.enc if lines else enc, raw or b""), raw
            continue
        if len(values) != len(names):
            yield row, line, None, Refusal("field_count", expected=len(names), found=len(values)), raw
            continue
        if strip:
            values = [v.strip() for v in values]
        yield row, line, dict(zip(names, values)), None, raw


def read_fixed(stream: BinaryIO, fmt: FormatConfig, notes: dict) -> Iterator[Record]:
    if not fmt.fields:
        raise FormatConfigError("fixed-width format needs `fields` (name, start, width)")
    lines, text, enc = _lines(stream, fmt, notes)
    need = max(f.start + f.width for f in fmt.fields)
    layout = [(f.name, f.start, f.start + f.width) for f in fmt.fields]
    last_start = max(f.start for f in fmt.fields)
    row = 0
    for line_no, line in enumerate(text, 1):
        raw = lines.take() if lines is not None else None
        if line_no <= fmt.skip_rows:
            continue
        line = line.rstrip("\r\n")
        if not line.strip():
            continue
        row += 1
        if _BAD.search(line):
            yield row, line_no, None, _encoding_refusal(lines.enc if lines else enc, raw or b""), raw
        elif len(line) <= last_start:  # trailing blanks may be trimmed, but every field must begin
            yield row, line_no, None, Refusal("line_short", length=len(line), need=need), raw
        else:
            vals = {n: line[a:b] for n, a, b in layout}
            yield row, line_no, ({k: v.strip() for k, v in vals.items()} if fmt.strip else vals), None, raw
