"""A page of a list the API answers whole (users, groups, roles, API keys, data services): the
console shows 50 rows a page with previous/next, so a tenant with a thousand of them gets a page
that renders in milliseconds (rendering every row was most of the time, bench_console.py).

    rows, pager = page_of(all_rows, request)     # pager: offset, size, total, more, path, keep
"""

from __future__ import annotations

from typing import Any

from starlette.requests import Request

SIZE = 50


def page_of(rows: list, request: Request, size: int = SIZE) -> tuple[list, dict[str, Any]]:
    raw = request.query_params.get("offset") or ""
    offset = int(raw) - int(raw) % size if raw.isdigit() and len(raw) < 10 else 0
    offset = min(offset, max(len(rows) - 1, 0) // size * size)
    keep = {k: v for k, v in request.query_params.items() if k not in ("offset", "lang")}
    pager = {"offset": offset, "size": size, "total": len(rows), "more": offset + size < len(rows)}
    return rows[offset : offset + size], pager | {"path": request.url.path, "keep": keep}
