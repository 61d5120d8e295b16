"""The console's only way to the platform: the JSON API of the same process, called in-process.

Every page and button goes through the route a script would call (`GET /connectors`, `PUT
/connectors/{name}/pause`, ...) with the signed-in person's token, so the permissions, tenant
scope, edge checks and audit entries are exactly the API's; the console never opens the control
DB. The caller's address is passed on (sign-in back-off is per source address) and so is the
request id (the page's and the API call's audit entries share it).

    api = Backend(request, token)
    r = await api.get("/pipelines")          # an httpx.Response
"""

from __future__ import annotations

import re
from contextvars import ContextVar
from typing import Any
from urllib.parse import quote

import httpx
from starlette.requests import Request

from deploy.logs import request_id_var

INTERNAL = "http://huiliu.console"
page_language: ContextVar[str] = ContextVar("page_language", default="en")  # the console page's language
CHINESE = re.compile(r"[\u4e00-\u9fff]")
PERMISSION_REFUSAL = re.compile(r"permission '([a-z_*:-]+)' required")


class Backend:
    def __init__(self, request: Request, token: str | None = None):
        self.request = request
        self.token = token

    async def call(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        client = self.request.client
        transport = httpx.ASGITransport(
            app=self.request.app, client=(client.host, client.port) if client else ("127.0.0.1", 0)
        )
        headers = dict(kwargs.pop("headers", {}))
        if self.token:
            headers["Authorization"] = f"Bearer {self.token}"
        if rid := request_id_var.get():
            headers["X-Request-ID"] = rid
        async with httpx.AsyncClient(transport=transport, base_url=INTERNAL, timeout=60) as http:
            return await http.request(method, path, headers=headers, **kwargs)

    async def get(self, path: str, **kwargs: Any) -> httpx.Response:
        return await self.call("GET", path, **kwargs)

    async def post(self, path: str, **kwargs: Any) -> httpx.Response:
        return await self.call("POST", path, **kwargs)

    async def put(self, path: str, **kwargs: Any) -> httpx.Response:
        return await self.call("PUT", path, **kwargs)

    async def delete(self, path: str, **kwargs: Any) -> httpx.Response:
        return await self.call("DELETE", path, **kwargs)


def detail_of(response: httpx.Response) -> str:
    """The API's refusal in the language of the page being served (`page_language`, set by
    session.signed_in): the Chinese text where the API gives one, else its own (see refusal_of)."""
    return refusal_of(response, page_language.get())


def english_detail(response: httpx.Response) -> str:
    """The API's refusal message (FastAPI `detail` or Kafka Connect `message`) as text."""
    try:
        body = response.json()
    except ValueError:
        return response.text[:300]
    if isinstance(body, dict):
        detail = body.get("message") or body.get("detail")
        if isinstance(detail, list):  # FastAPI validation errors
            return "; ".join(f"{'.'.join(map(str, e.get('loc', [])))}: {e.get('msg')}" for e in detail)
        return str(detail)
    return str(body)[:300]


def segment(value: str) -> str:
    """A name as one path segment of an API URL (a '/' or '..' in it cannot reach another route)."""
    quoted = quote(value, safe="")
    return quoted.replace(".", "%2E") if quoted in (".", "..") else quoted


def refusal_of(response: httpx.Response, lang: str) -> str:
    """The API's refusal in the page's language: the Chinese text where the API gives one
    (`message_zh`, each problem's `msg_zh`, or the zh half of a bilingual "en / 中文" detail),
    else the API's own text. Problems (field: why) follow the message."""
    zh = lang.startswith("zh")
    try:
        body = response.json()
    except ValueError:
        return english_detail(response)
    detail = body.get("detail") if isinstance(body, dict) else None
    if isinstance(detail, str) and (needed := PERMISSION_REFUSAL.fullmatch(detail)):  # api.security.require
        return f"需要 {needed[1]} 权限" if zh else detail
    en_part, _, zh_part = detail.partition(" / ") if isinstance(detail, str) else ("", "", "")
    if CHINESE.search(zh_part):  # a bilingual "english / 中文" detail
        return zh_part if zh else en_part
    if isinstance(detail, dict) and "message" in detail:
        text = str(detail.get("message_zh") if zh and detail.get("message_zh") else detail["message"])
        problems = detail.get("problems") or []
        parts = [f"{p.get('field')}: {p.get('msg_zh') if zh and p.get('msg_zh') else p.get('msg')}" for p in problems]
        return "; ".join([text, *parts[:20]])
    return english_detail(response)
