"""File formats and typing (AGG-05), no broker needed: CSV/TSV (GBK), XML, xlsx, JSON, fixed width."""

from __future__ import annotations

import io
import json
import tracemalloc
from datetime import date, datetime
from decimal import Decimal

import openpyxl
import pytest

from connectors.files.coerce import ColumnDef, RowError, RowTyper
from connectors.files.columnar import type_batch
from connectors.files.encoding import detect
from connectors.files.formats import FileFormatError, FormatConfig, read_records


def rows(data: bytes, **fmt) -> list:
    return [r[:4] for r in read_records(io.BytesIO(data), FormatConfig(**fmt))]


def test_csv_in_gbk_is_detected_and_quoting_is_honoured():
    text = "编号,姓名,地址\n" + "1,张三,\"济南市, 历下区\"\n2,李四,\"说\"\"你好\"\"\"\n" * 20
    data = text.encode("gbk")
    assert detect(io.BytesIO(data)) == "gb18030"
    got = rows(data)
    assert got[0] == (1, 2, {"编号": "1", "姓名": "张三", "地址": "济南市, 历下区"}, None)
    assert got[1][2]["地址"] == '说"你好"'
    assert len(got) == 40


def test_csv_bad_rows_are_reported_with_line_and_reading_goes_on():
    data = "a;b\n1;2\n3\n4;5\n\n6;\xff7\n".encode("latin-1")
    got = rows(data, delimiter=";", encoding="utf-8")
    assert [g[:2] for g in got] == [(1, 2), (2, 3), (3, 4), (4, 6)]
    assert got[1][2] is None and "expected 2 fields" in got[1][3]
    assert got[3][2] is None and "not utf-8" in got[3][3]


def test_tsv_without_header_and_multiline_quoted_field():
    got = rows(b'x\t"two\nlines"\ny\tz\n', kind="tsv", header=False)
    assert got[0] == (1, 2, {"col1": "x", "col2": "two\nlines"}, None)
    assert got[1] == (2, 3, {"col1": "y", "col2": "z"}, None)


def test_fixed_width_layout_and_short_lines():
    data = "0001张三      370102\n0002李四\n\n0003王五      3701\n".encode("gb18030")
    fields = [
        {"name": "id", "start": 0, "width": 4},
        {"name": "name", "start": 4, "width": 8},
        {"name": "division", "start": 12, "width": 6},
    ]
    got = rows(data, kind="fixed", fields=fields, encoding="gbk")
    assert got[0][2] == {"id": "0001", "name": "张三", "division": "370102"}
    assert got[1][2] is None and "layout needs 18" in got[1][3]
    assert got[2][:2] == (3, 4) and got[2][2]["division"] == "3701"


XML = b"""<?xml version="1.0" encoding="UTF-8"?>
<r:export xmlns:r="urn:gov:people" xmlns:x="urn:other">
  <r:meta><r:person><r:name>not a record</r:name></r:person></r:meta>
  <r:people>
    <r:person id="1"><r:name>Zhang</r:name><r:phone>1</r:phone><r:phone>2</r:phone>
      <r:addr><r:city>Jinan</r:city></r:addr></r:person>
    <r:person id="2"><r:name>Li</r:name><!-- c --></r:person>
  </r:people>
</r:export>"""


def test_xml_record_path_with_namespaces_and_flattening():
    got = rows(XML, kind="xml", record_path="/r:export/r:people/r:person", namespaces={"r": "urn:gov:people"})
    assert [g[2]["id"] for g in got] == ["1", "2"]
    assert got[0][2]["phone"] == '["1", "2"]' and got[0][2]["addr.city"] == "Jinan"
    assert got[0][1] == 5  # the source line of the record's end tag


def test_xml_that_breaks_midway_raises_after_the_good_records():
    data = b"<root><record><a>1</a></record><record><a>2</a></record><record><a>3</oops></root>"
    it = read_records(io.BytesIO(data), FormatConfig(kind="xml"))
    assert next(it)[2] == {"a": "1"} and next(it)[2] == {"a": "2"}
    with pytest.raises(FileFormatError, match="not well formed"):
        next(it)


@pytest.mark.parametrize("good", [1, 3_000, 40_000])  # break in the first buffer, near one, deep in the file
def test_xml_delivers_every_record_before_a_break_then_its_line(good):
    from connectors.files.formats import xmldoc

    body = b"".join(b"<record><id>%d</id><name>\xe5\xbc\xa0</name></record>\n" % i for i in range(good))
    data = b"<root>\n" + body + b"<record><id>bad</id></recor>\n<record><id>never</id></record></root>"
    assert len(data) > xmldoc.CHUNK or good == 1
    got, error = [], None
    try:
        for record in read_records(io.BytesIO(data), FormatConfig(kind="xml")):
            got.append(record)
    except FileFormatError as exc:
        error = str(exc)
    assert [r[2]["id"] for r in got] == [str(i) for i in range(good)]
    assert got[-1][2]["name"] == "张" and got[-1][1] == good + 1  # line of the last good record
    assert error is not None and f"at line {good + 2}" in error and "not well formed" in error


def test_xml_truncated_file_keeps_its_records_and_says_where_it_ended():
    data = b"<root>" + b"<record><id>1</id></record>" * 5 + b"<record><id>6</id>"
    got = []
    with pytest.raises(FileFormatError, match="not well formed at line 1"):
        for record in read_records(io.BytesIO(data), FormatConfig(kind="xml")):
            got.append(record[2]["id"])
    assert got == ["1"] * 5


@pytest.mark.long  # parses a large file twice (30 s): `make test-long`
def test_xml_streaming_keeps_memory_flat():
    def doc(n):
        yield b"<root>"
        for i in range(n):
            yield b"<record><id>%d</id><name>%s</name></record>" % (i, b"x" * 200)
        yield b"</root>"

    class Gen(io.RawIOBase):
        def __init__(self, n):
            self.it, self.buf = doc(n), b""

        def readable(self):
            return True

        def readinto(self, b):
            while len(self.buf) < len(b):
                try:
                    self.buf += next(self.it)
                except StopIteration:
                    break
            n = min(len(b), len(self.buf))
            b[:n], self.buf = self.buf[:n], self.buf[n:]
            return n

    tracemalloc.start()
    count = sum(1 for _ in read_records(io.BufferedReader(Gen(200_000)), FormatConfig(kind="xml")))
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    assert count == 200_000 and peak < 20 * 2**20  # ~50 MB of XML


def test_xlsx_read_only_with_title_row_and_typed_cells():
    wb = openpyxl.Workbook()
    ws = wb.active
    ws.append(["人口导出"])
    ws.append(["id", "name", "born", "score"])
    ws.append([1, "张三", datetime(1990, 1, 2), 12.5])
    ws.append([None, None, None, None])
    ws.append([2, "李四", datetime(1991, 3, 4), 7, "extra"])
    buf = io.BytesIO()
    wb.save(buf)
    got = rows(buf.getvalue(), kind="xlsx", skip_rows=1)
    assert got[0] == (1, 3, {"id": 1, "name": "张三", "born": datetime(1990, 1, 2), "score": 12.5}, None)
    assert got[1][:2] == (2, 5) and "beyond the 4 named columns" in got[1][3]


def test_json_lines_and_streamed_arrays():
    got = rows(b'{"a": 1}\n[1]\nnot json\n{"a": 2, "b": {"c": 3}}\n', kind="jsonl")
    assert [g[2] for g in got] == [{"a": 1}, None, None, {"a": 2, "b": {"c": 3}}]
    assert "JSON object" in got[1][3] and "not JSON" in got[2][3]
    got = rows(
        json.dumps({"data": {"rows": [{"a": 1}, {"a": 2}, 3]}}).encode(), kind="json", record_path="data.rows.item"
    )
    assert [g[2] for g in got] == [{"a": 1}, {"a": 2}, None]


def test_typing_rejects_with_reasons_and_never_rounds():
    cols = [
        ColumnDef(name="id", type="int", key=True),
        ColumnDef(name="amount", type="decimal", precision=10, scale=2),
        ColumnDef(name="born", type="date", format="%Y%m%d"),
        ColumnDef(name="ok", type="bool"),
        ColumnDef(name="when", type="datetime"),
        ColumnDef(name="nm", source="姓名"),
    ]
    typer = RowTyper(tuple(c.spec() for c in cols), {"nm": "姓名"}, {c.name: c.format for c in cols})
    out = typer(
        {"id": "7", "amount": "12.5", "born": "19900102", "ok": "是", "when": "2024-01-02T03:04:05", "姓名": "张三"}
    )
    assert out == {
        "id": 7,
        "amount": Decimal("12.5"),
        "born": date(1990, 1, 2),
        "ok": True,
        "when": datetime(2024, 1, 2, 3, 4, 5),
        "nm": "张三",
    }
    for bad, why in [
        ({"id": ""}, "'id' is required"),
        ({"id": "x"}, "'id'"),
        ({"id": "1", "amount": "1.234"}, "more than 2 decimals"),
        ({"id": "1", "born": "1990-01-02"}, "'born'"),
        ({"id": "1", "ok": "maybe"}, "not a boolean"),
    ]:
        with pytest.raises(RowError, match=why):
            typer(bad)


def test_columnar_typing_accepts_and_refuses_exactly_what_row_typing_does():
    cols = [
        ColumnDef(name="id", type="bigint", key=True),
        ColumnDef(name="amount", type="decimal", precision=10, scale=2),
        ColumnDef(name="score", type="double"),
        ColumnDef(name="born", type="date", format="%Y%m%d"),
        ColumnDef(name="ok", type="bool"),
        ColumnDef(name="nm", source="姓名"),
    ]
    typer = RowTyper(tuple(c.spec() for c in cols), {"nm": "姓名"}, {c.name: c.format for c in cols})
    rows = [
        {"id": " 7 ", "amount": "12.5", "score": "1e3", "born": "19900102", "ok": "是", "姓名": "张三"},
        {"id": "8", "amount": "1.255", "score": "1", "born": "", "ok": "", "姓名": ""},  # would round: refused
        {"id": "", "amount": "1", "score": "1", "born": "", "ok": "", "姓名": "x"},  # key empty: refused
        {"id": "+9", "amount": "-.5", "score": "-.5E-3", "born": "", "ok": "no", "姓名": "x"},
        {"id": "10", "amount": "1", "score": "x", "born": "", "ok": "", "姓名": "x"},  # not a float
        {"id": "11", "amount": "", "score": "", "born": "1990-01-02", "ok": "", "姓名": "x"},
    ]  # wrong format
    typed = type_batch(typer, rows)
    expected_bad = {}
    for i, row in enumerate(rows):
        try:
            typer(row)
        except RowError as exc:
            expected_bad[i] = str(exc)
    assert typed.bad == expected_bad and sorted(expected_bad) == [1, 2, 4, 5]
    assert typed.rows.to_pylist() == [typer(rows[i]) for i in typed.good]
    assert typed.rows.to_pylist()[1]["amount"] == Decimal("-0.50") and typed.rows.to_pylist()[0]["nm"] == "张三"
    # Values only Python reads ("1_000", "inf"): the batch is typed row by row instead, never differently.
    assert type_batch(typer, [dict(rows[0], id="1_000")]) is None and typer(dict(rows[0], id="1_000"))["id"] == 1000
    assert type_batch(typer, [dict(rows[0], score="inf")]) is None
    # Values that are not text (JSON numbers) also go row by row.
    assert type_batch(typer, [dict(rows[0], id=7)]) is None
