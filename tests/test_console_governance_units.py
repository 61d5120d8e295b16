"""Pure parts of the console's governance pages (no servers): the user forms' notice address and
language, the profile chart's figures and a job message in the page's language, and the access
request form read into the API's body with its problems."""

from __future__ import annotations

from starlette.datastructures import FormData

from api.console.backend import page_language
from api.console.pages_catalog_profile import in_language, profile_chart
from api.console.pages_sharing import _access_form
from api.console.user_contact import contact_changes, contact_of


def test_notice_address_and_language_checked_and_only_changes_sent():
    values, problems = contact_of(FormData({"email": " desk@example.org ", "lang": "en"}))
    assert values == {"email": "desk@example.org", "lang": "en"} and problems == {}
    for bad in ("desk", "a@b", "two@@example.com", "a b@example.com", "x" * 250 + "@example.com"):
        assert contact_of(FormData({"email": bad}))[1] == {"email": "admin.email_invalid"}, bad
    assert contact_of(FormData({"lang": "fr"}))[1] == {"lang": "admin.lang_invalid"}
    current = {"email": "desk@example.org", "lang": None}
    assert contact_changes({"email": "desk@example.org", "lang": "zh"}, current) == {}  # unset reads as zh
    assert contact_changes({"email": "", "lang": "en"}, current) == {"email": "", "lang": "en"}  # "" clears


def test_profile_chart_in_percent_and_job_messages_in_the_page_language():
    profile = {
        "rows": 400,
        "columns": {"id": {"null_ratio": 0.0, "distinct": 400}, "phone": {"null_ratio": 0.25, "distinct": 300}},
    }
    assert profile_chart(profile) == {
        "categories": ["id", "phone"],
        "series": {"null_ratio": [0.0, 25.0], "distinct_share": [100.0, 75.0]},
    }
    assert profile_chart({"rows": 0, "columns": {"a": {"null_ratio": 0.0, "distinct": 0}}})["series"][
        "distinct_share"
    ] == [0]
    token = page_language.set("zh-CN")
    try:
        assert in_language("已剖析 400 行 / profiled 400 rows") == "已剖析 400 行"
        assert in_language("table gone") == "table gone" and in_language(None) == ""
    finally:
        page_language.reset(token)
    token = page_language.set("en")
    try:
        assert in_language("已剖析 400 行 / profiled 400 rows") == "profiled 400 rows"
    finally:
        page_language.reset(token)


def test_access_request_form_read_with_its_problems():
    form = FormData(
        [
            ("urn", "hl:dataset:clickhouse://h:1/default.t"),
            ("application", "checks_1"),
            ("purpose", " 核对 "),
            ("field", "id"),
            ("field", "name"),
            ("period_days", "30"),
        ]
    )
    body, problems = _access_form(form)
    assert problems == [] and body == {
        "dataset": "hl:dataset:clickhouse://h:1/default.t",
        "application": "checks_1",
        "purpose": "核对",
        "fields": ["id", "name"],
        "period_days": 30,
    }
    body, problems = _access_form(FormData({"application": "Checks", "period_days": "0"}))
    assert problems == [
        "access.application_invalid",
        "access.purpose_missing",
        "access.fields_missing",
        "access.period_invalid",
    ]
    assert "period_days" not in body
