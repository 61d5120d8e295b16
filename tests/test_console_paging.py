"""api/console/paging.page_of: 50 rows a page of a list the API answers whole, offsets aligned to the
page and kept inside the list, other query parameters kept for the previous/next links."""

from __future__ import annotations

from starlette.requests import Request

from api.console.i18n import environment
from api.console.paging import page_of


def _request(query: str) -> Request:
    return Request(
        {"type": "http", "method": "GET", "path": "/console/admin/users", "query_string": query.encode(), "headers": []}
    )


def test_pages_of_fifty_with_the_query_kept():
    rows = list(range(120))
    page, pager = page_of(rows, _request("offset=60&q=x"))
    assert page == list(range(50, 100)) and pager["offset"] == 50 and pager["more"] and pager["keep"] == {"q": "x"}
    page, pager = page_of(rows, _request("offset=9999"))
    assert page == list(range(100, 120)) and not pager["more"]
    page, pager = page_of(rows, _request("offset=-5"))
    assert page == rows[:50] and pager["offset"] == 0
    assert page_of([], _request(""))[0] == []


def test_the_pager_links():
    _, pager = page_of(list(range(120)), _request("offset=50&q=x"))
    html = environment("zh-CN").get_template("_pager.html").render(pager=pager)
    assert "第 51–100 条，共 120 条" in html
    assert 'href="/console/admin/users?q=x&amp;offset=0"' in html and "offset=100" in html
