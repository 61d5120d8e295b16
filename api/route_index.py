"""Route matching that starts from the request path's first segment (issue 17: the API's cost per request).

FastAPI (0.165) matches a request by trying the app's routes in order, each included router by
trying every route inside it, and then once more to pick the route it found: a request to a route
of the last routers (`/livez`, `/metrics`, `/topics`) was tried against ~200 routes twice, which
py-spy showed as half of the event loop's work for `/livez`.

`index_routes(app)` puts a dispatcher in front of the app's router: for each first path segment
(`/services/...` -> `services`) it keeps a copy of the router that holds only the top-level routes
able to match a path starting with it (routes whose first segment is a parameter, or that cannot
be read, are kept in every copy), in their order. A route whose first segment is another literal
cannot match, so the copy finds the same route, with the same scope, as the whole router would;
redirect_slashes compares paths of the same first segment too. Anything else (not HTTP, a path
without a leading `/`, a router with low-priority or frontend routes, FastAPI internals other
than expected) goes to the router unchanged. The index is rebuilt when a route or router is
added to the app.
"""

from __future__ import annotations

import copy
import logging

log = logging.getLogger(__name__)
ANY = None  # a route whose first segment is not a literal: a candidate for every path


def _first_segment(path_format: str | None) -> str | None:
    if not path_format or not path_format.startswith("/"):
        return ANY
    segment = path_format.split("/", 2)[1]
    return ANY if "{" in segment else segment


def _segments(route) -> set[str] | None:
    """The first segments a top-level route can match (None: any)."""
    if hasattr(route, "effective_candidates"):  # an included router: the union of its routes'
        found: set[str] = set()
        for candidate in route.effective_candidates():
            inner = _segments(candidate)
            if inner is ANY:
                return ANY
            found |= inner
        return found
    if hasattr(route, "original_route"):  # a route inside an included router, with its prefix applied
        starlette_route = getattr(route, "starlette_route", None)
        path_format = getattr(starlette_route, "path_format", None) if starlette_route else route.path_format
    else:
        path_format = getattr(route, "path_format", None)
    segment = _first_segment(path_format)
    return ANY if segment is ANY else {segment}


class SegmentDispatch:
    """ASGI app standing in for `router`: each HTTP request goes to the router's copy for its
    path's first segment (same routes, same order, only those that can match)."""

    def __init__(self, router):
        self.router = router
        self._version: object = object()
        self._copies: dict[str, object] = {}
        self._rest = router  # paths whose first segment no literal route has
        self._enabled = False

    def _version_now(self):
        # A route added to the app (or a router included) after the first request is seen: the
        # app's router counts its changes. Not the whole tree's count (FastAPI's recursive
        # _get_routes_version): the routers are assembled before the app serves.
        return getattr(self.router, "_routes_version", None), len(self.router.routes)

    def _build(self) -> None:
        router = self.router
        self._enabled = False
        if getattr(router, "_low_priority_routes", None) or getattr(router, "_frontend_routes", None):
            return  # their matching looks across all routes: not indexed
        try:
            kinds = [(route, _segments(route)) for route in router.routes]
        except Exception:  # FastAPI's internals changed: match as FastAPI does
            log.exception("routes could not be indexed by first segment: every route is tried")
            return
        literals = set().union(*(s for _, s in kinds if s is not ANY))
        self._copies = {seg: self._copy([r for r, s in kinds if s is ANY or seg in s]) for seg in literals}
        self._rest = self._copy([r for r, s in kinds if s is ANY])
        self._enabled = True

    def _copy(self, routes: list):
        shallow = copy.copy(self.router)
        shallow.routes = routes
        return shallow

    async def __call__(self, scope, receive, send):
        version = self._version_now()
        if version != self._version:
            self._build()
            self._version = version
        if not self._enabled or scope["type"] != "http":
            return await self.router.app(scope, receive, send)
        path = scope["path"]
        root = scope.get("root_path", "")
        if root and path.startswith(root):  # as starlette's get_route_path
            path = path[len(root) :]
        if not path.startswith("/"):
            return await self.router.app(scope, receive, send)
        scope.setdefault("router", self.router)  # url_for and friends see the whole router
        target = self._copies.get(path.split("/", 2)[1], self._rest)
        await target.app(scope, receive, send)


def index_routes(app) -> bool:
    """Route the app's HTTP requests through a SegmentDispatch (the app's middleware stack calls
    `app.router`, which runs its own `middleware_stack`). Not when the router has middleware of its
    own there. Returns whether it did."""
    router = app.router
    if router.middleware_stack != router.app:
        return False
    router.middleware_stack = SegmentDispatch(router)
    return True
