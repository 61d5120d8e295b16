"""Department files as they really arrive (issue 21), no servers: title rows, totals and footers,
sheets by name or index, GB18030 after 256 KB of ASCII, declared column formats, reasons in
Chinese and English that name the file's header and mask ID-like values, raw content of bad rows.
The same files through the HTTP API into ClickHouse: tests/test_files_department_e2e.py."""

from __future__ import annotations

import io
import json
from datetime import date
from decimal import Decimal

import pytest

from connectors.files.coerce import ColumnDef, RowError, RowTyper
from connectors.files.columnar import type_batch
from connectors.files.encoding import SAMPLE
from connectors.files.formats import FormatConfig, read_records
from connectors.files.messages import mask, render
from tests.support.department_files import HEADER, department_csv, department_xlsx


def read(data: bytes, **fmt) -> tuple[list, dict]:
    notes: dict = {}
    return list(read_records(io.BytesIO(data), FormatConfig(**fmt), notes)), notes


def test_csv_title_rows_header_totals_and_footer_are_recognised_and_reported():
    got, notes = read(department_csv())
    assert [g[2]["序号"] for g in got] == [str(i) for i in range(1, 31)]
    assert all(g[3] is None for g in got) and got[0][1] == 4  # line 4: the first data row
    assert notes["header_line"] == 3 and notes["columns"] == HEADER and notes["encoding"] == "gb18030"
    assert [t["line"] for t in notes["title_rows"]] == [1, 2] and "企业登记情况表" in notes["title_rows"][0]["text"]
    assert notes["skipped_count"] == 3 and [s["text"][:2] for s in notes["skipped"]] == ["合计", "填报", "注："]
    assert got[0][2]["企业名称"] == "企业1䶮堃"
    assert got[0][4] == '1,91370100MA00000001,企业1䶮堃,"1,000.00",2022/06/30,13800000001\r\n'.encode("gb18030")
    # skip_patterns: [] keeps every row (the totals row then is data, refused by typing if declared)
    got, notes = read(department_csv(), skip_patterns=[])
    assert len(got) == 33 and notes["skipped_count"] == 0


def test_declared_columns_choose_the_header_row():
    data = "报表,,\n说明,甲,乙\n编号,名称,金额\n1,a,2\n".encode()
    got, notes = read(data)  # the widest row first: "说明,甲,乙" would win by width
    assert notes["header_line"] == 2
    notes: dict = {}
    got = list(read_records(io.BytesIO(data), FormatConfig(), notes, {"编号", "金额"}))
    assert notes["header_line"] == 3 and got[0][2] == {"编号": "1", "名称": "a", "金额": "2"}


@pytest.mark.parametrize("sheet", ["企业名录", 1, "1"])
def test_xlsx_sheet_by_name_or_index_merged_title_and_totals(sheet):
    got, notes = read(department_xlsx(), kind="xlsx", sheet=sheet)
    assert notes["sheet"] == "企业名录" and notes["sheets"] == ["说明", "企业名录"]
    assert notes["header_line"] == 2 and notes["title_rows"] == [{"line": 1, "text": "某市企业登记情况表"}]
    assert len(got) == 10 and got[-1][1] == 12 and got[0][2]["企业名称"] == "企业1"
    assert [s["line"] for s in notes["skipped"]] == [13, 14] and notes["skipped"][0]["text"] == "合计"
    assert got[0][4].startswith("1\t91370100MA00000001\t企业1\t1000.5")


def test_xlsx_unknown_sheet_names_the_sheets():
    from connectors.files.formats import FileFormatError

    with pytest.raises(FileFormatError, match="说明"):
        read(department_xlsx(), kind="xlsx", sheet="nope")


def test_gbk_after_256kb_of_ascii_switches_to_gb18030_and_says_where():
    head = b"id,name\r\n" + b"".join(b"%d,ascii name %d\r\n" % (i, i) for i in range(1, 20_000))
    assert len(head) > SAMPLE
    tail = "".join(f"{i},张三{i}\r\n" for i in range(20_000, 20_100)).encode("gbk")
    got, notes = read(head + tail)
    assert all(g[3] is None for g in got) and len(got) == 20_099
    assert got[-1][2] == {"id": "20099", "name": "张三20099"}
    switch = notes["encoding_switch"]
    assert switch == {"from": "utf-8", "to": "gb18030", "line": 20_001} and notes["encoding"] == "gb18030"
    # declared utf-8: no switch, the rows are refused with the encoding they decode in
    got, notes = read(head + tail, encoding="utf-8")
    bad = [g for g in got if g[3] is not None]
    assert len(bad) == 100 and "encoding_switch" not in notes
    assert (
        bad[0][3].code == "encoding" and "gb18030" in bad[0][3] and "编码" in render("encoding", bad[0][3].params, "zh")
    )
    assert bad[0][4] == "20000,张三20000\r\n".encode("gbk")


def test_declared_formats_accept_common_forms_and_nothing_else():
    cols = [
        ColumnDef(name="born", source="成立日期", type="date", format=["%Y/%m/%d", "%Y年%m月%d日", "%Y-%m-%d"]),
        ColumnDef(name="capital", source="注册资本", type="decimal", precision=14, scale=2, thousands=","),
        ColumnDef(name="staff", source="人数", type="int", fullwidth=True),
        ColumnDef(name="plain", source="金额", type="decimal", precision=14, scale=2),
    ]
    typer = RowTyper(
        tuple(c.spec() for c in cols), {c.name: c.source for c in cols}, {c.name: c.format for c in cols}, defs=cols
    )
    ok = [
        {"成立日期": "2022/06/30", "注册资本": "1,000.00", "人数": "１２３", "金额": "5"},
        {"成立日期": "2022年6月30日", "注册资本": "12,345,678.5", "人数": "7", "金额": "1000.00"},
        {"成立日期": "2022-06-30", "注册资本": "999", "人数": "－３", "金额": ""},
    ]
    assert [typer(r) for r in ok] == [
        {"born": date(2022, 6, 30), "capital": Decimal("1000.00"), "staff": 123, "plain": Decimal("5")},
        {"born": date(2022, 6, 30), "capital": Decimal("12345678.5"), "staff": 7, "plain": Decimal("1000.00")},
        {"born": date(2022, 6, 30), "capital": Decimal("999"), "staff": -3, "plain": None},
    ]
    refused = [
        ({"成立日期": "30/06/2022"}, "format", "成立日期"),  # not a declared format: never guessed
        ({"注册资本": "1,00.00"}, "type", "注册资本"),  # separators not in groups of three
        ({"注册资本": "1.000,00"}, "type", "注册资本"),
        ({"金额": "1,000.00"}, "type", "金额"),  # no separator declared for this column
        ({"人数": "１２３"[:1] + "x"}, "type", "人数"),
    ]
    for record, code, column in refused:
        with pytest.raises(RowError) as info:
            typer(record)
        assert info.value.code == code and info.value.params["column"] == column, (record, info.value)
    # the columnar path accepts and refuses exactly the same
    batch = ok + [r for r, _, _ in refused]
    typed = type_batch(typer, batch)
    assert sorted(typed.bad) == [3, 4, 5, 6, 7] and typed.rows.to_pylist() == [typer(r) for r in ok]
    assert typed.bad[3].code == "format"


def test_reasons_name_the_header_quote_the_value_mask_id_like_columns_in_two_languages():
    cols = [
        ColumnDef(name="idno", source="身份证号", type="int"),
        ColumnDef(name="phone", source="联系电话", type="int"),
        ColumnDef(name="amount", source="注册资本", type="decimal", precision=10, scale=2),
        ColumnDef(name="code", source="代码", type="int", sensitive=True),
        ColumnDef(name="tel_no", source="电话号码备注", type="int", sensitive=False),
    ]
    typer = RowTyper(tuple(c.spec() for c in cols), {c.name: c.source for c in cols}, {}, defs=cols)

    def refusal(record):
        with pytest.raises(RowError) as info:
            typer(record)
        return info.value

    e = refusal({"身份证号": "11010519491231002X"})
    assert str(e) == "column '身份证号': not a whole number: '110*************2X'"
    assert render(e.code, e.params, "zh") == "列“身份证号”：“110*************2X”不是有效的整数"
    assert "138" in str(refusal({"联系电话": "138-0000-0000"})) and "0000-0000" not in str(
        refusal({"联系电话": "138-0000-0000"})
    )
    assert str(refusal({"注册资本": "12x"})) == "column '注册资本': not a decimal: '12x'"
    assert "'****'" in str(refusal({"代码": "abcd"}))
    assert "'abcdefghij'" in str(refusal({"电话号码备注": "abcdefghij"}))  # declared not sensitive
    assert mask("13800001234") == "138******34"


def test_xml_recover_skips_a_broken_record_counts_it_with_its_line_and_goes_on():
    from connectors.files.formats import xmldoc

    records = [f"  <企业 id=\"{i}\"><名称>企业{i}</名称><资本>{i}.5</资本></企业>\n" for i in range(1, 3001)]
    records[1499] = "  <企业 id=\"1500\"><名称>坏<名称><资本>1</资本></企业>\n"  # a tag never closed
    records[2999] = "  <企业 id=\"3000\"><名称>截断</名称>\n"  # the file ends inside the last record
    data = ('<?xml version="1.0" encoding="GB18030"?>\n<数据 xmlns:r="urn:x">\n' + "".join(records)).encode("gb18030")
    assert len(data) > 2 * xmldoc.CHUNK
    got, notes = read(data, kind="xml", record_path="/数据/企业", recover=True)
    bad = [g for g in got if g[3] is not None]
    assert len(got) == 3000 and [(g[0], g[1]) for g in bad] == [(1500, 1502), (3000, 3002)]
    assert bad[0][3].code == "xml_broken" and bad[0][4].decode("gb18030").startswith('<企业 id="1500">')
    assert got[1500][2] == {"id": "1501", "名称": "企业1501", "资本": "1501.5"} and notes["broken_elements"] == 2
    # without recover the break still stops the file, after the records before it
    from connectors.files.formats import FileFormatError

    with pytest.raises(FileFormatError):
        read(data, kind="xml", record_path="/数据/企业")


def test_json_lines_in_gbk_after_utf8_sample_switch_and_are_recorded():
    head = b"".join(b'{"id": %d, "name": "ascii"}\n' % i for i in range(1, 15_000))
    assert len(head) > SAMPLE
    tail = '{"id": 15000, "org": {"name": "张三"}}\n'.encode("gbk")
    got, notes = read(head + tail, kind="jsonl")
    assert all(g[3] is None for g in got) and got[-1][2] == {"id": 15000, "org": {"name": "张三"}}
    assert notes["encoding_switch"] == {"from": "utf-8", "to": "gb18030", "line": 15_000}


def test_a_config_error_found_inside_a_task_fails_it_at_once(monkeypatch):
    """The connectors README promises it: no six retries for what no retry can fix."""
    from types import SimpleNamespace

    from connectors import task_runner
    from connectors.files.formats import FormatConfigError

    class Broken:
        def run(self, stop):
            raise FormatConfigError("record_path uses prefix 'x' not in namespaces []")

    monkeypatch.setattr(task_runner, "build_runtime", lambda record, settings: Broken())
    reports = []
    record = SimpleNamespace(name="cfg-broken", config={}, tenant=None)
    settings = SimpleNamespace(openlineage_url="")  # lineage off; no control DB (the failure message is best effort)
    runner = task_runner.TaskRunner(record, 0, settings, lambda *a: reports.append(a), max_attempts=6, base_delay=0.01)
    runner.start()
    assert runner.thread.join(10) is None and not runner.thread.is_alive()
    states = [r[0] for r in reports]
    assert states[-1] == "FAILED" and "retrying" not in " ".join(str(r[1]) for r in reports)
    assert reports[-1][1].startswith("config error: FormatConfigError: record_path uses prefix")


def test_a_wide_malformed_data_row_does_not_take_the_header_over():
    data = "编号,名称,金额\n1,a,2\n2,b,3,x,y,z,w,v\n".encode()
    got, notes = read(data)
    assert notes["header_line"] == 1 and notes.get("title_rows") == []
    assert got[1][3].code == "field_count" and got[1][4] == b"2,b,3,x,y,z,w,v\n"


def test_xml_recover_reads_records_holding_elements_of_their_own_name():
    records = [
        '<项目 id="1"><名称>总项目</名称><子项><项目 id="1.1"><名称>子项目</名称></项目></子项></项目>',
        '<项目 id="2"><名称>未闭合</名称>',  # never closed: broken up to the next 项目
        '<项目 id="3"><名称>第三</名称><项目 id="3.1"/><项目 id="3.2"><项目 id="3.2.1"/></项目></项目>',
        '<项目 id="4"><名称>坏<名称></项目>',  # closed, malformed inside
        '<项目 id="5"><名称>第五</名称></项目>',
    ]
    data = ('<?xml version="1.0" encoding="UTF-8"?>\n<数据>\n' + "\n".join(records) + "\n</数据>\n").encode()
    got, notes = read(data, kind="xml", record_path="//项目", recover=True)
    assert [(g[0], g[1], g[3].code if g[3] else None) for g in got] == [
        (1, 3, None),
        (2, 4, "xml_broken"),
        (3, 5, None),
        (4, 6, "xml_broken"),
        (5, 7, None),
    ]
    assert got[0][2]["id"] == "1" and "子项目" in json.dumps(got[0][2], ensure_ascii=False)
    assert got[2][2]["名称"] == "第三" and got[4][2] == {"id": "5", "名称": "第五"}
    assert notes["broken_elements"] == 2 and got[1][4].decode() == records[1] + "\n"
