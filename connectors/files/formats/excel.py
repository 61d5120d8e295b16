"""xlsx through openpyxl in read-only mode (rows stream from the zip; the sheet is never all in memory).

The sheet is chosen by name or 0-based index (`format.sheet`); title rows above the header are
recognised (`format.header_detect`, see layout.py) and totals/footer rows skipped by
`format.skip_patterns`; what was chosen and skipped goes to `notes`.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import BinaryIO

from connectors.files.formats import FileFormatError, FormatConfig, Record, Refusal
from connectors.files.formats.layout import Skipper, cell_text, choose_header


def _raw(values) -> str:
    return "\t".join(cell_text(v) for v in values)


def read_xlsx(stream: BinaryIO, fmt: FormatConfig, notes: dict, declared: set[str] | None = None) -> Iterator[Record]:
    import openpyxl

    try:
        wb = openpyxl.load_workbook(stream, read_only=True, data_only=True)
    except Exception as exc:  # zipfile.BadZipFile, KeyError of a broken package...
        raise FileFormatError(f"not a readable xlsx workbook: {exc}") from None
    try:
        sheet = fmt.sheet
        if isinstance(sheet, str) and sheet not in wb.sheetnames and sheet.isdigit():
            sheet = int(sheet)
        try:
            ws = wb.worksheets[sheet] if isinstance(sheet, int) else wb[sheet] if sheet else wb.worksheets[0]
        except (IndexError, KeyError):
            raise FileFormatError(f"no sheet {fmt.sheet!r}; the workbook has {wb.sheetnames}") from None
        notes["sheet"], notes["sheets"] = ws.title, list(wb.sheetnames)
        rows = enumerate(ws.iter_rows(values_only=True), 1)
        for _ in range(fmt.skip_rows):
            next(rows, None)
        names = None
        ahead: list[tuple[int, tuple]] = []
        if fmt.header:
            if fmt.header_detect and not fmt.skip_rows:
                for line, values in rows:
                    if any(cell_text(v) for v in values):
                        ahead.append((line, values))
                        if len(ahead) >= fmt.header_search_rows:
                            break
                at = choose_header([list(v) for _, v in ahead], declared)
                notes["title_rows"] = [
                    {"line": line, "text": " ".join(t for t in map(cell_text, values) if t)[:200]}
                    for line, values in ahead[:at]
                ]
                first = ahead[at] if ahead else None
                ahead = ahead[at + 1 :]
            else:
                first = next(rows, None)
            if first is None:
                return
            notes["header_line"], header = first
            names = [cell_text(h) or f"col{i + 1}" for i, h in enumerate(header)]
            while names and cell_text(header[len(names) - 1]) == "":  # trailing empty header cells
                names.pop()
            notes["columns"] = names
        skip = Skipper(fmt.skip_patterns, notes)
        row = 0

        def all_rows():
            yield from ahead
            yield from rows

        for line, values in all_rows():
            if all(v is None or v == "" for v in values):
                continue
            if skip(values, line):
                continue
            row += 1
            if names is None:
                names = [f"col{i + 1}" for i in range(len(values))]
                notes["columns"] = names
            extra = [v for v in values[len(names) :] if v not in (None, "")]
            if extra:
                yield row, line, None, Refusal("extra_values", count=len(extra), named=len(names)), _raw(values)
                continue
            record = {n: values[i] if i < len(values) else None for i, n in enumerate(names)}
            yield row, line, record, None, _raw(values)
    finally:
        wb.close()
