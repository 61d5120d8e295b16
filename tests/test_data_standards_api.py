"""Data standards through HTTP (issue 16): elements and code sets as drafts, one review for many
items, the author refused as reviewer, publication, immutable published versions (a change is a
new version), diff between versions, retirement, every transition in the audit log, national code
sets with their provenance, tenants seeing only their own standards, and bad input answering 4xx
that names the field in English and Chinese."""

from __future__ import annotations

import uuid

import httpx
import pytest

from tests.api_process import api_client  # noqa: F401  (fixture)

RUN = uuid.uuid4().hex[:6]
TA, TB = f"sta{RUN}", f"stb{RUN}"
PASSWORD = "Quartz-Lumen-7741-Tarn"


def _user(api, name: str, tenant: str, roles: list[str]) -> httpx.Client:
    r = api.post("/users", json={"username": name, "password": PASSWORD, "tenant": tenant, "roles": roles})
    assert r.status_code == 201, r.text
    token = api.post("/auth/token", data={"username": name, "password": PASSWORD}).json()["access_token"]
    return httpx.Client(base_url=str(api.base_url), headers={"Authorization": f"Bearer {token}"}, timeout=60)


@pytest.fixture(scope="module")
def people(api):
    out = {
        "author": _user(api, f"{TA}-author", TA, ["admin"]),
        "reviewer": _user(api, f"{TA}-reviewer", TA, ["admin"]),
        "developer": _user(api, f"{TA}-dev", TA, ["developer"]),
        "viewer": _user(api, f"{TA}-viewer", TA, ["viewer"]),
        "other": _user(api, f"{TB}-admin", TB, ["admin"]),
    }
    yield out
    for c in out.values():
        c.close()


GENDER = {
    "code": "gender_code",
    "name_zh": "性别代码",
    "name_en": "gender code",
    "definition": "人的性别，按 GB/T 2261.1",
    "data_type": "string",
    "length": 1,
    "format": "[0-9]",
    "code_set": "gb2261_1",
    "category": "basic",
    "source_standard": "GB/T 2261.1-2003",
}


def test_bad_input_names_the_field_in_english_and_chinese(people):
    r = people["author"].post(
        "/standards/elements", json={"code": "9bad", "name_zh": "", "format": "(", "data_type": "text", "x": 1}
    )
    assert r.status_code == 422, r.text
    problems = {p["field"]: p for p in r.json()["detail"]["problems"]}
    assert set(problems) == {"code", "name_zh", "format", "data_type", "x"}
    assert problems["format"]["msg"].startswith("not a regular expression")
    assert problems["format"]["msg_zh"].startswith("不是有效的正则表达式")
    r = people["author"].post(
        "/standards/elements",
        json={"code": "age", "name_zh": "年龄", "data_type": "integer", "min_value": 9, "max_value": 1},
    )
    assert r.status_code == 422
    assert r.json()["detail"]["problems"] == [
        {"field": "min_value", "msg": "min_value is above max_value", "msg_zh": "最小值大于最大值"}
    ]
    assert people["author"].get("/standards/elements/nothing-here").status_code == 404
    assert people["author"].post("/standards/national/gb9999/install").status_code == 404
    assert people["author"].post("/standards/reviews", json={"items": []}).status_code == 422
    assert people["author"].get("/standards/reviews/999999").status_code == 404


def test_national_code_sets_name_their_source(people):
    assert people["viewer"].get("/standards/national").status_code == 403  # viewers need standards:view
    body = people["developer"].get("/standards/national").json()
    shipped = {s["code"]: s for s in body["shipped"]}
    assert shipped["gb2261_1"]["items"] == 4 and "GB/T 2261.1-2003" in shipped["gb2261_1"]["source"]
    assert (
        shipped["gb2260"]["items"] == 376 and "modood/Administrative-divisions-of-China" in shipped["gb2260"]["source"]
    )
    assert "GB/T 4761" in body["not_shipped"]  # no reliable table here: said, never invented
    assert shipped["gb3304"]["items"] == 56 and "tourze/gb-t-3304" in shipped["gb3304"]["source"]
    assert shipped["gb4658"]["items"] == 40 and "pycountry" in shipped["gb2659"]["source"]


def test_national_ethnic_groups_education_and_countries_install_with_known_entries(people):
    author = people["author"]
    for code in ("gb3304", "gb4658", "gb2659", "gb2659_numeric"):
        assert author.post(f"/standards/national/{code}/install").status_code == 201, code

    def labels(code: str) -> dict[str, dict]:
        body = author.get(f"/standards/code-sets/{code}").json()
        assert body["status"] == "draft" and body["source"]
        return {i["code"]: i for i in body["items"]}

    ethnic = labels("gb3304")
    assert (ethnic["01"]["label"], ethnic["56"]["label"], len(ethnic)) == ("汉族", "基诺族", 56)
    education = labels("gb4658")
    assert education["21"]["label"] == "大学本科毕业" and education["21"]["parent"] == "20"
    assert labels("gb2659")["CHN"]["label"] == "中国" and labels("gb2659_numeric")["156"]["label"] == "中国"


def test_lifecycle_review_publication_versions_and_retirement(people, api):
    author, reviewer = people["author"], people["reviewer"]
    r = author.post("/standards/national/gb2261_1/install")
    assert r.status_code == 201, r.text
    assert r.json()["status"] == "draft" and r.json()["item_count"] == 4
    r = author.post("/standards/elements", json=GENDER)
    assert r.status_code == 201, r.text
    assert (r.json()["version"], r.json()["status"], r.json()["author"]) == (1, "draft", f"{TA}-author")

    items = [{"kind": "code_set", "code": "gb2261_1"}, {"kind": "element", "code": "gender_code"}]
    r = author.post("/standards/reviews", json={"title": "性别", "items": items})
    assert r.status_code == 409  # the category does not exist yet
    assert r.json()["detail"]["problems"][0]["field"] == "items.1.category"
    assert author.get("/standards/code-sets/gb2261_1").json()["status"] == "draft"  # nothing half-applied
    assert author.post("/standards/categories", json={"code": "basic", "name": "基础类"}).status_code == 201
    r = author.post("/standards/categories", json={"code": "person", "name": "人员", "parent": "nope"})
    assert r.status_code == 422 and r.json()["detail"]["problems"][0]["msg_zh"] == "没有上级分类 'nope'"
    assert (
        author.post("/standards/categories", json={"code": "person", "name": "人员", "parent": "basic"}).status_code
        == 201
    )

    r = author.post("/standards/reviews", json={"title": "性别", "items": items})
    assert r.status_code == 201, r.text
    review = r.json()
    assert review["status"] == "open" and len(review["items"]) == 2
    assert author.get("/standards/elements/gender_code").json()["status"] == "in_review"
    r = author.patch("/standards/elements/gender_code", json={"unit": "x"})
    assert r.status_code == 409 and "正在审核" in r.json()["detail"]["problems"][0]["msg_zh"]

    # the author may not decide, a developer lacks standards:review, another person approves
    r = author.post(f"/standards/reviews/{review['id']}/decision", json={"approve": True})
    assert r.status_code == 403 and r.json()["detail"]["problems"][0]["msg_zh"] == "提交人不能审核自己提交的标准"
    assert (
        people["developer"].post(f"/standards/reviews/{review['id']}/decision", json={"approve": True}).status_code
        == 403
    )
    assert [r["id"] for r in reviewer.get("/standards/reviews", params={"status": "open"}).json()] == [review["id"]]
    r = reviewer.post(f"/standards/reviews/{review['id']}/decision", json={"approve": True, "comment": "同意"})
    assert r.status_code == 200, r.text
    assert (r.json()["status"], r.json()["reviewer"]) == ("approved", f"{TA}-reviewer")
    assert reviewer.post(f"/standards/reviews/{review['id']}/decision", json={"approve": True}).status_code == 409
    published = author.get("/standards/elements/gender_code").json()
    assert published["status"] == "published" and published["version"] == 1
    assert author.get("/standards/code-sets/gb2261_1").json()["status"] == "published"

    # a published version is immutable: a change is a new draft version
    r = author.patch("/standards/elements/gender_code", json={"definition": "人的性别代码", "length": 2})
    assert r.status_code == 200, r.text
    assert (r.json()["version"], r.json()["status"]) == (2, "draft")
    assert author.get("/standards/elements/gender_code", params={"version": 1}).json() == published
    diff = author.get("/standards/elements/gender_code/diff", params={"from": 1, "to": 2}).json()
    assert diff["diff"]["changed"] == {
        "definition": {"from": "人的性别，按 GB/T 2261.1", "to": "人的性别代码"},
        "length": {"from": 1, "to": 2},
    }
    assert author.get("/standards/elements/gender_code/diff", params={"from": 1, "to": 7}).status_code == 404

    # rejected: back to draft; resubmitted and approved: v2 published, v1 superseded
    rid = author.post("/standards/reviews", json={"items": [{"kind": "element", "code": "gender_code"}]}).json()["id"]
    assert (
        reviewer.post(
            f"/standards/reviews/{rid}/decision", json={"approve": False, "comment": "长度应为 1"}
        ).status_code
        == 200
    )
    assert author.get("/standards/elements/gender_code").json()["status"] == "draft"
    assert author.patch("/standards/elements/gender_code", json={"length": 1}).json()["version"] == 2
    rid = author.post("/standards/reviews", json={"items": [{"kind": "element", "code": "gender_code"}]}).json()["id"]
    assert reviewer.post(f"/standards/reviews/{rid}/decision", json={"approve": True}).status_code == 200
    versions = author.get("/standards/elements/gender_code/versions").json()
    assert [(v["version"], v["status"]) for v in versions] == [(1, "superseded"), (2, "published")]

    # code set versions: a changed label shows in the diff
    r = author.patch("/standards/code-sets/gb2261_1", json={"description": "v2"})
    assert (r.json()["version"], r.json()["status"]) == (2, "draft")
    cs_diff = author.get("/standards/code-sets/gb2261_1/diff", params={"from": 1, "to": 2}).json()
    assert cs_diff["diff"]["changed"] == {"description": {"from": "", "to": "v2"}}
    assert cs_diff["diff"]["items"] == {"added": [], "removed": [], "changed": []}

    # retire: the published version, by a reviewer
    assert people["developer"].post("/standards/elements/gender_code/retire").status_code == 403
    r = reviewer.post("/standards/elements/gender_code/retire")
    assert r.status_code == 200 and (r.json()["version"], r.json()["status"]) == (2, "retired")
    assert reviewer.post("/standards/elements/gender_code/retire").status_code == 409

    # every transition is in the audit log
    audit = api.get("/audit", params={"action": "standards.*", "limit": 1000}).json()
    mine = [e for e in audit if e["actor"] in (f"{TA}-author", f"{TA}-reviewer") and e["outcome"] == "success"]
    actions = [e["action"] for e in reversed(mine)]
    for expected in (
        "standards.review.submit",
        "standards.review.approve",
        "standards.review.reject",
        "standards.element.retire",
    ):
        assert expected in actions, actions
    approve = next(
        e for e in mine if e["action"] == "standards.review.approve" and e["detail"]["review"] == review["id"]
    )
    assert sorted(approve["detail"]["items"]) == ["code_set:gb2261_1@1", "element:gender_code@1"]
    denied = [e for e in audit if e["action"] == "standards.review.approve" and e["outcome"] == "denied"]
    assert any(e["actor"] == f"{TA}-author" for e in denied)


def test_another_tenant_sees_none_of_them(people):
    other = people["other"]
    assert other.get("/standards/elements/gender_code").status_code == 404
    assert other.get("/standards/elements").json()["total"] == 0
    assert other.post("/standards/elements/gender_code/retire").status_code == 404
    assert other.get("/standards/reviews").json() == []
    assert people["developer"].get("/standards/elements").json()["total"] == 1
    assert people["viewer"].post("/standards/elements", json=GENDER).status_code == 403


def test_workbench_lists_what_waits_for_each_person(people):
    author, reviewer, developer = people["author"], people["reviewer"], people["developer"]
    assert author.post("/standards/elements", json={"code": "wb_elem", "name_zh": "待审数据元"}).status_code == 201
    rid = author.post("/standards/reviews", json={"items": [{"kind": "element", "code": "wb_elem"}]}).json()["id"]

    mine = reviewer.get("/workbench").json()
    assert (mine["user"], mine["tenant"]) == (f"{TA}-reviewer", TA)
    assert [r["id"] for r in mine["reviews"]] == [rid] and mine["counts"]["reviews"] == 1
    theirs = author.get("/workbench").json()
    assert theirs["reviews"] == [] and theirs["counts"]["reviews"] == 0  # not their own submission
    assert "reviews" not in developer.get("/workbench").json()  # cannot review
    assert people["other"].get("/workbench").json()["reviews"] == []

    assert (
        reviewer.post(f"/standards/reviews/{rid}/decision", json={"approve": False, "comment": "缺少定义"}).status_code
        == 200
    )
    assert reviewer.get("/workbench").json()["counts"]["reviews"] == 0
    returned = author.get("/workbench").json()["returned"]
    assert [(r["id"], r["comment"]) for r in returned] == [(rid, "缺少定义")]
    assert author.get("/workbench").json()["failed_jobs"] == []
