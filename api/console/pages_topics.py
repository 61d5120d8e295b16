"""Topics (主题): the list with partitions and end offsets (`GET /topics`, a page of 20, 50 or 100 by
name with previous/next), a topic's page with its
partitions, the registry subject's versions and fields, the diff of two versions (htmx, from
`GET /topics/{name}/schema/diff`) and a message browser paging one partition by offset (htmx, from
`GET /topics/{name}/messages`: decoded from Avro, masked by the API for the person's role)."""

from __future__ import annotations

import json
from typing import Any

from fastapi import APIRouter, Depends, Request
from fastapi.responses import Response

from api.console.backend import Backend, detail_of, segment
from api.console.session import ConsoleRoute, Session, render, signed_in

router = APIRouter(route_class=ConsoleRoute)
PAGE_SIZES = (10, 20, 50)  # messages a page
LIST_SIZES = (20, 50, 100)  # topics a page of the list


def _number(raw: str | None, default: int, top: int) -> int:
    return min(int(raw), top) if raw and raw.isdigit() and len(raw) < 19 else default


@router.get("/topics")
async def topics_page(request: Request, session: Session = Depends(signed_in)) -> Response:
    """A page of topics by name (`GET /topics?limit=&offset=`: only that page's end offsets are read)."""
    params = request.query_params
    q = (params.get("q") or "").strip()[:200]
    size = _number(params.get("size"), LIST_SIZES[1], LIST_SIZES[-1]) or LIST_SIZES[1]  # any 1-100 by URL
    offset = _number(params.get("offset"), 0, 10**9)
    offset -= offset % size
    query: dict[str, Any] = {"limit": size, "offset": offset} | ({"q": q} if q else {})
    answer = await Backend(request, session.token).get("/topics", params=query)
    context: dict[str, Any] = {"q": q, "topics": [], "error": None, "size": size}
    context["sizes"] = sorted({*LIST_SIZES, size})
    context |= {"offset": offset, "total": 0, "more": False}
    if answer.status_code == 200:
        body = answer.json()
        context.update(topics=body["items"], total=body["total"], more=offset + size < body["total"])
    else:
        context["error"] = detail_of(answer)
    return render(
        request,
        "topics.html",
        context,
        status_code=200 if not context["error"] else answer.status_code,
        session=session,
    )


@router.get("/topics/{name}")
async def topic_page(name: str, request: Request, session: Session = Depends(signed_in)) -> Response:
    answer = await Backend(request, session.token).get(f"/topics/{segment(name)}")
    if answer.status_code != 200:
        context = {"name": name, "error": detail_of(answer)}
        return render(request, "topic.html", context, status_code=answer.status_code, session=session)
    topic = answer.json()
    context = {"name": name, "topic": topic, "page_sizes": PAGE_SIZES, "error": None}
    return render(request, "topic.html", context, session=session)


@router.get("/topics/{name}/diff")
async def topic_diff(name: str, request: Request, session: Session = Depends(signed_in)) -> Response:
    """The difference of two schema versions (an htmx fragment, the catalogue's diff table)."""
    params = request.query_params
    query = {"from": params.get("from", ""), "to": params.get("to", "")}
    answer = await Backend(request, session.token).get(f"/topics/{segment(name)}/schema/diff", params=query)
    d = answer.json() if answer.status_code == 200 else None
    context = {"d": {**d, "summary": ""} if d else None, "error": None if d else detail_of(answer)}
    return render(request, "_dataset_diff.html", context, session=session)


@router.get("/topics/{name}/messages")
async def topic_messages(name: str, request: Request, session: Session = Depends(signed_in)) -> Response:
    """A page of one partition's messages from an offset (an htmx fragment with its pager)."""
    params = request.query_params
    partition = _number(params.get("partition"), 0, 100_000)
    offset = _number(params.get("offset"), 0, 2**62)
    limit = _number(params.get("limit"), 20, 200) or 20
    query = {"partition": partition, "offset": offset, "limit": limit}
    answer = await Backend(request, session.token).get(f"/topics/{segment(name)}/messages", params=query)
    context: dict[str, Any] = {"name": name, "partition": partition, "offset": offset, "limit": limit}
    if answer.status_code != 200:
        context["error"] = detail_of(answer)
    else:
        page = answer.json()
        for item in page["items"]:
            item["shown"] = json.dumps(item["value"], ensure_ascii=False, indent=1)
        context.update(page=page, error=None, previous=max(offset - limit, 0))
    return render(request, "_topic_messages.html", context, session=session)
