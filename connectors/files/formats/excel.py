"""xlsx through openpyxl in read-only mode (rows stream from the zip; the sheet is never all in memory)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import BinaryIO

from connectors.files.formats import FileFormatError, FormatConfig, Record


def read_xlsx(stream: BinaryIO, fmt: FormatConfig) -> Iterator[Record]:
    import openpyxl

    try:
        wb = openpyxl.load_workbook(stream, read_only=True, data_only=True)
    except Exception as exc:  # zipfile.BadZipFile, KeyError of a broken package...
        raise FileFormatError(f"not a readable xlsx workbook: {exc}") from None
    try:
        ws = wb[fmt.sheet] if fmt.sheet else wb.worksheets[0]
        rows = ws.iter_rows(values_only=True)
        line = 0
        for _ in range(fmt.skip_rows):
            next(rows, None)
            line += 1
        names = None
        if fmt.header:
            header = next(rows, None)
            line += 1
            if header is None:
                return
            names = [str(h).strip() if h is not None else f"col{i + 1}" for i, h in enumerate(header)]
            while names and header[len(names) - 1] is None:  # trailing empty header cells
                names.pop()
        row = 0
        for values in rows:
            line += 1
            if all(v is None or v == "" for v in values):
                continue
            row += 1
            if names is None:
                names = [f"col{i + 1}" for i in range(len(values))]
            extra = [v for v in values[len(names) :] if v not in (None, "")]
            if extra:
                yield row, line, None, f"{len(extra)} value(s) beyond the {len(names)} named columns"
                continue
            yield row, line, {n: values[i] if i < len(values) else None for i, n in enumerate(names)}, None
    finally:
        wb.close()
