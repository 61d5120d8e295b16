"""The API's refusals as console pages show them (backend.refusal_of / detail_of): the Chinese text
where the API gives one, the API's own text otherwise, English on English pages."""

from __future__ import annotations

import httpx

from api.console.backend import detail_of, page_language, refusal_of


def _answer(status: int, body) -> httpx.Response:
    return httpx.Response(status, json=body)


def test_bilingual_details_permissions_and_problems():
    both = _answer(404, {"detail": "no topic 'x' / 没有主题 'x'"})
    assert refusal_of(both, "zh-CN") == "没有主题 'x'" and refusal_of(both, "en") == "no topic 'x'"
    needed = _answer(403, {"detail": "permission 'users:manage' required"})
    assert refusal_of(needed, "zh-CN") == "需要 users:manage 权限"
    assert refusal_of(needed, "en") == "permission 'users:manage' required"
    problems = {"message": "review refused", "message_zh": "不允许审核", "problems": []}
    problems["problems"].append({"field": "reviewer", "msg": "the author may not", "msg_zh": "作者不能审核"})
    answer = _answer(403, {"detail": problems})
    assert refusal_of(answer, "zh-CN") == "不允许审核; reviewer: 作者不能审核"
    assert refusal_of(answer, "en") == "review refused; reviewer: the author may not"


def test_english_only_texts_pass_through_and_detail_of_follows_the_page():
    path = _answer(404, {"detail": "no file a / b"})  # a slash, but no Chinese half
    assert refusal_of(path, "zh-CN") == "no file a / b"
    connect = _answer(409, {"error_code": 409, "message": "Connector name x is not available"})
    assert refusal_of(connect, "zh-CN") == "Connector name x is not available"
    both = _answer(404, {"detail": "no topic 'x' / 没有主题 'x'"})
    token = page_language.set("zh-CN")
    try:
        assert detail_of(both) == "没有主题 'x'"
    finally:
        page_language.reset(token)
    assert detail_of(both) == "no topic 'x'"  # outside a page: English
