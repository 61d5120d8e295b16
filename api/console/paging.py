"""Lists 50 rows a page with previous/next: `page_of` pages a list the API answers whole (users,
groups, roles, API keys); `asked_offset` + `pager` serve a list the API pages itself (data
services: `?limit=&offset=`, the total in `X-Total-Count`).

    rows, pager = page_of(all_rows, request)     # pager: offset, size, total, more, path, keep
"""

from __future__ import annotations

from typing import Any

from starlette.requests import Request

SIZE = 50


def asked_offset(request: Request, size: int = SIZE) -> int:
    """The `offset` query parameter, aligned to the page (0 when absent or bad)."""
    raw = request.query_params.get("offset") or ""
    return int(raw) - int(raw) % size if raw.isdigit() and len(raw) < 10 else 0


def pager(request: Request, offset: int, total: int, size: int = SIZE) -> dict[str, Any]:
    """What _pager.html draws: the rows shown, previous/next with the other parameters kept."""
    keep = {k: v for k, v in request.query_params.items() if k not in ("offset", "lang")}
    return {"offset": offset, "size": size, "total": total, "more": offset + size < total} | {
        "path": request.url.path,
        "keep": keep,
    }


def page_of(rows: list, request: Request, size: int = SIZE) -> tuple[list, dict[str, Any]]:
    """A page of a whole list (an offset past the end shows the last page)."""
    offset = min(asked_offset(request, size), max(len(rows) - 1, 0) // size * size)
    return rows[offset : offset + size], pager(request, offset, len(rows), size)
