"""api/route_index.py: a request is matched against the routes its path's first segment can reach,
and finds the same route as FastAPI's whole router (issue 17, the API's cost per request).

For every route of the real app (the OpenAPI document's and the console's), with its parameters
filled in, and for paths no route has (an unknown segment, a trailing slash, the root, a wrong
method), the route chosen from the segment's copy is the route the whole router chooses, with the
same match kind (full, or partial: a 405). Then through ASGI: answers of the indexed app for those
paths equal the plain router's, and a route added after the first request is found.
"""

from __future__ import annotations

import asyncio
import re

import pytest
from starlette.routing import Match

from api.app import create_app
from api.route_index import SegmentDispatch
from deploy.settings import Settings


@pytest.fixture(scope="module")
def app(tmp_path_factory):
    state = tmp_path_factory.mktemp("route-index")
    return create_app(Settings(state_dir=state, control_db_url=f"sqlite:///{state}/control.db"))


def _chosen(routes, scope) -> tuple[object, Match]:
    """The route a router with these routes picks (the first full match, else the first partial)."""
    partial = None
    for route in routes:
        match, _ = route.matches(dict(scope))
        if match == Match.FULL:
            return route, match
        if match == Match.PARTIAL and partial is None:
            partial = route
    return (partial, Match.PARTIAL) if partial is not None else (None, Match.NONE)


def _scope(method: str, path: str) -> dict:
    return {"type": "http", "method": method, "path": path, "root_path": "", "headers": [], "query_string": b""}


def _paths(app) -> list[tuple[str, str]]:
    found = []
    for route in app.router.routes:
        contexts = route.effective_route_contexts() if hasattr(route, "effective_route_contexts") else [route]
        for context in contexts:
            template = getattr(context, "path_format", None) or getattr(context, "path", "")
            if not template:
                continue
            path = re.sub(r"\{[^}:]+:path\}", "a/b", template)
            path = re.sub(r"\{[^}]+\}", "1", path)
            for method in sorted(getattr(context, "methods", None) or {"GET"}):
                found.append((method, path))
    return found


def test_every_route_is_found_as_the_whole_router_finds_it(app):
    dispatch = SegmentDispatch(app.router)
    dispatch._build()
    assert dispatch._enabled, "the app's routes could not be indexed"
    paths = _paths(app)
    assert len(paths) > 150  # the API's routes and the console's
    extra = [("GET", "/nope"), ("GET", "/livez/"), ("GET", "/"), ("DELETE", "/livez"), ("PATCH", "/services/x/v1")]
    extra += [("GET", "/console/nope"), ("GET", "/services"), ("GET", "/services/"), ("FOO", "/pipelines")]
    differ = []
    for method, path in paths + extra:
        scope = _scope(method, path)
        target = dispatch._copies.get(path.split("/", 2)[1], dispatch._rest)
        if _chosen(target.routes, scope) != _chosen(app.router.routes, scope):
            differ.append(f"{method} {path}")
    assert not differ, differ
    assert len(dispatch._copies["livez"].routes) < len(app.router.routes) / 5  # it does narrow


async def _answer(app, method: str, path: str) -> tuple[int, bytes]:
    sent = []

    async def receive():
        return {"type": "http.request", "body": b"", "more_body": False}

    async def send(message):
        sent.append(message)

    scope = {
        **_scope(method, path),
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "scheme": "http",
        "raw_path": path.encode(),
        "headers": [(b"host", b"test")],
        "client": ("127.0.0.1", 5000),
        "server": ("127.0.0.1", 80),
    }
    await app(scope, receive, send)
    body = b"".join(m.get("body", b"") for m in sent if m["type"] == "http.response.body")
    return sent[0]["status"], body


def test_answers_are_the_plain_routers_and_a_later_route_is_found(app, tmp_path):
    plain = create_app(Settings(state_dir=tmp_path, control_db_url=f"sqlite:///{tmp_path}/control.db"))
    plain.router.middleware_stack = plain.router.app  # FastAPI's own matching, no index
    cases = [("GET", "/livez"), ("POST", "/livez"), ("GET", "/nope"), ("GET", "/livez/"), ("GET", "/pipelines")]
    cases += [("FOO", "/pipelines"), ("GET", "/services/x/v1"), ("GET", "/console/login")]
    for method, path in cases:
        indexed, expected = asyncio.run(_answer(app, method, path)), asyncio.run(_answer(plain, method, path))
        assert indexed[0] == expected[0], (method, path, indexed, expected)
        if path != "/console/login":  # its page holds a fresh CSRF token each time
            assert indexed[1] == expected[1], (method, path)

    @app.get("/zz-added-later")
    async def added() -> dict:
        return {"added": True}

    assert asyncio.run(_answer(app, "GET", "/zz-added-later")) == (200, b'{"added":true}')
