"""Data elements in and out of Excel through HTTP (issue 16): a workbook with bad rows is refused
with every problem named by row, column and field (in English and Chinese) and nothing applied;
a good one becomes drafts in one review; a refusal by the store (an unknown category) names the
row and applies nothing either; export reads back as the same elements, and re-importing it after
publication changes nothing."""

from __future__ import annotations

import io
import uuid

import httpx
import pytest
from openpyxl import Workbook, load_workbook

from tests.api_process import api_client  # noqa: F401  (fixture)

RUN = uuid.uuid4().hex[:6]
TENANT = f"sx{RUN}"
PASSWORD = "Quartz-Lumen-7741-Tarn"
XLSX = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
HEADER = ["代码", "中文名称", "英文名称", "数据类型", "长度", "格式", "最小值", "最大值", "分类", "同义词"]


def _user(api, name: str, roles: list[str]) -> httpx.Client:
    r = api.post("/users", json={"username": name, "password": PASSWORD, "tenant": TENANT, "roles": roles})
    assert r.status_code == 201, r.text
    token = api.post("/auth/token", data={"username": name, "password": PASSWORD}).json()["access_token"]
    return httpx.Client(base_url=str(api.base_url), headers={"Authorization": f"Bearer {token}"}, timeout=60)


@pytest.fixture(scope="module")
def people(api):
    out = {"author": _user(api, f"{TENANT}-author", ["developer"]), "reviewer": _user(api, f"{TENANT}-rev", ["admin"])}
    assert out["author"].post("/standards/categories", json={"code": "basic", "name": "基础类"}).status_code == 201
    yield out
    for c in out.values():
        c.close()


def workbook(rows: list[list], header: list[str] = HEADER) -> bytes:
    wb = Workbook()
    ws = wb.active
    ws.title = "数据元"
    ws.append(header)
    for row in rows:
        ws.append(row)
    out = io.BytesIO()
    wb.save(out)
    return out.getvalue()


GOOD = [
    ["citizen_id", "公民身份号码", "citizen ID", "string", 18, r"\d{17}[\dX]", None, None, "basic", "身份证号;sfzh"],
    ["age", "年龄", "age", "integer", None, None, 0, 150, "basic", None],
    ["full_name", "姓名", "name", "string", 50, None, None, None, "basic", None],
]


def _upload(client, data: bytes, **params) -> httpx.Response:
    return client.post("/standards/import", content=data, headers={"Content-Type": XLSX}, params=params)


def test_bad_rows_are_each_reported_and_nothing_is_applied(people):
    rows = [
        GOOD[0],
        ["9bad", "坏代码", "", "string", None, None, None, None, None, None],  # row 3: code
        ["weight", "体重", "", "text", None, None, None, None, None, None],  # row 4: data type
        ["plate", "车牌", "", "string", None, "([A-Z", None, None, None, None],  # row 5: format
        ["citizen_id", "重复", "", "string", None, None, None, None, None, None],  # row 6: duplicate of row 2
        ["height", "身高", "", "integer", None, None, 300, 50, None, None],  # row 7: range
        [None] * 10,  # empty rows are skipped
        ["", "", "", "", -1, None, None, None, None, None],  # row 9: no code, no name, bad length
    ]
    r = _upload(people["author"], workbook(rows))
    assert r.status_code == 422, r.text
    detail = r.json()["detail"]
    assert "未导入任何内容" in detail["message_zh"]
    got = sorted((e["row"], e["column"], e["field"]) for e in detail["errors"])
    assert got == [
        (3, "A", "code"),
        (4, "D", "data_type"),
        (5, "F", "format"),
        (6, "A", "code"),
        (7, "G", "min_value"),
        (9, "A", "code"),
        (9, "B", "name_zh"),
        (9, "E", "length"),
    ]
    dup = next(e for e in detail["errors"] if e["row"] == 6)
    assert dup["msg_zh"] == "代码 'citizen_id' 与第 2 行重复"
    assert people["author"].get("/standards/elements").json()["total"] == 0  # row 2 was good, still not applied


def test_unknown_columns_and_files_that_are_not_workbooks(people):
    r = _upload(people["author"], workbook([GOOD[0]], header=[*HEADER[:-1], "备注"]))
    assert r.status_code == 422
    assert [(e["row"], e["column"], e["field"]) for e in r.json()["detail"]["errors"]] == [(1, "J", "header")]
    r = _upload(people["author"], b"code,name\nx,y\n")
    assert r.status_code == 422 and r.json()["detail"]["errors"][0]["msg_zh"] == "不是 Excel 工作簿（.xlsx）"
    assert _upload(people["author"], b"").status_code == 422


def test_a_refusal_by_the_store_names_the_row_and_applies_nothing(people):
    rows = [GOOD[1], ["score", "评分", "", "number", None, None, None, None, "nosuch", None]]
    r = _upload(people["author"], workbook(rows))
    assert r.status_code == 409, r.text
    errors = r.json()["detail"]["errors"]
    assert [(e["row"], e["field"], e["msg_zh"]) for e in errors] == [(3, "category", "没有分类 'nosuch'")]
    assert people["author"].get("/standards/elements").json()["total"] == 0


def test_import_is_one_review_and_export_reads_back(people, api):
    author, reviewer = people["author"], people["reviewer"]
    r = _upload(author, workbook(GOOD), title="第一批")
    assert r.status_code == 201, r.text
    body = r.json()
    assert (body["rows"], body["saved"], body["unchanged"]) == (3, 3, 0)
    review = body["review"]
    assert review["title"] == "第一批" and sorted(i["code"] for i in review["items"]) == [
        "age",
        "citizen_id",
        "full_name",
    ]
    assert {e["status"] for e in author.get("/standards/elements").json()["items"]} == {"in_review"}
    assert reviewer.post(f"/standards/reviews/{review['id']}/decision", json={"approve": True}).status_code == 200

    r = author.get("/standards/export", params={"status": "published"})
    assert r.status_code == 200 and r.headers["content-type"] == XLSX
    ws = load_workbook(io.BytesIO(r.content)).active
    rows = list(ws.iter_rows(values_only=True))
    assert rows[0][:3] == ("代码 code", "中文名称 name_zh", "英文名称 name_en")
    by_code = {row[0]: dict(zip((h.split()[-1] for h in rows[0]), row)) for row in rows[1:]}
    assert by_code["citizen_id"]["format"] == r"\d{17}[\dX]" and by_code["citizen_id"]["synonyms"] == "身份证号;sfzh"
    assert (by_code["age"]["min_value"], by_code["age"]["max_value"], by_code["age"]["status"]) == (0, 150, "published")

    again = _upload(author, r.content).json()  # the export, imported again: nothing changed, no review
    assert (again["saved"], again["unchanged"], again["review"]) == (0, 3, None)
    ws.cell(row=2, column=4, value="changed definition")  # one edited row: one new version, one review
    edited = io.BytesIO()
    ws.parent.save(edited)
    r = _upload(author, edited.getvalue())
    assert r.status_code == 201 and (r.json()["saved"], r.json()["unchanged"]) == (1, 2)
    assert author.get(f"/standards/elements/{rows[1][0]}").json()["version"] == 2
    audit = api.get("/audit", params={"action": "standards.element.import", "limit": 50}).json()
    assert any(e["actor"] == f"{TENANT}-author" and e["detail"].get("saved") == 3 for e in audit)
