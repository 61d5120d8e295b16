"""CSV/TSV and fixed-width text, in any encoding (detected when `encoding: auto`).

Bytes that do not decode are kept as surrogate escapes and the row is rejected with the
reason, so one bad byte costs one row, not the whole file and not silently.
"""

from __future__ import annotations

import csv
import io
import re
import sys
from collections.abc import Iterator
from typing import BinaryIO

from connectors.files.encoding import detect
from connectors.files.formats import FormatConfig, Record

_BAD = re.compile("[\udc80-\udcff]")
csv.field_size_limit(min(sys.maxsize, 2**31 - 1))


def _text(stream: BinaryIO, fmt: FormatConfig) -> tuple[io.TextIOWrapper, str]:
    enc = detect(stream, fmt.encoding)
    return io.TextIOWrapper(stream, encoding=enc, errors="surrogateescape", newline=""), enc


def read_csv(stream: BinaryIO, fmt: FormatConfig) -> Iterator[Record]:
    text, enc = _text(stream, fmt)
    delimiter = fmt.delimiter or ("\t" if fmt.kind == "tsv" else ",")
    reader = csv.reader(text, delimiter=delimiter, quotechar=fmt.quotechar)
    for _ in range(fmt.skip_rows):
        next(reader, None)
    names = None
    if fmt.header:
        header = next(reader, None)
        if header is None:
            return
        names = [h.strip().lstrip("\ufeff") for h in header]
    row = 0
    strip = fmt.strip
    for values in reader:
        if not values:
            continue  # blank line
        row += 1
        line = reader.line_num
        if names is None:
            names = [f"col{i + 1}" for i in range(len(values))]
        if len(values) != len(names):
            yield row, line, None, f"expected {len(names)} fields, found {len(values)}"
            continue
        joined = "".join(values)
        if _BAD.search(joined):
            yield row, line, None, f"bytes that are not {enc}"
            continue
        if strip:
            values = [v.strip() for v in values]
        yield row, line, dict(zip(names, values)), None


def read_fixed(stream: BinaryIO, fmt: FormatConfig) -> Iterator[Record]:
    if not fmt.fields:
        raise ValueError("fixed-width format needs `fields` (name, start, width)")
    text, enc = _text(stream, fmt)
    need = max(f.start + f.width for f in fmt.fields)
    layout = [(f.name, f.start, f.start + f.width) for f in fmt.fields]
    last_start = max(f.start for f in fmt.fields)
    row = 0
    for line_no, line in enumerate(text, 1):
        if line_no <= fmt.skip_rows:
            continue
        line = line.rstrip("\r\n")
        if not line.strip():
            continue
        row += 1
        if _BAD.search(line):
            yield row, line_no, None, f"bytes that are not {enc}"
        elif len(line) <= last_start:  # trailing blanks may be trimmed, but every field must begin
            yield row, line_no, None, f"line has {len(line)} characters, the layout needs {need}"
        else:
            vals = {n: line[a:b] for n, a, b in layout}
            yield row, line_no, ({k: v.strip() for k, v in vals.items()} if fmt.strip else vals), None
