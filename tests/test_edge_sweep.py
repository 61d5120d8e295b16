"""Issue 14, property-style sweep: numeric, time and text edge values on every route of the OpenAPI
document, with a superuser credential, against a real API process; no answer may be a 5xx.

Where tests/test_schemathesis.py draws random examples, this sweep is exhaustive over a fixed
set of edge values: for every operation, every path, query and header parameter gets each edge
value of its type (integers around the 32- and 64-bit limits, non-finite and huge numbers, times
before 1970, after 2999 and overflowing in UTC, over-long text, NUL characters), and every
integer, number, time or text field of a JSON or form body (filled in with plain values
around it) gets the same. A failure lists every request that answered 5xx.
"""

from __future__ import annotations

import json
import uuid
from urllib.parse import quote, urlencode

import httpx
import pytest

from tests.api_process import api_client, start_api, stop_api  # noqa: F401 - a fixture: api

RUN = uuid.uuid4().hex[:6]
INTS = [2**63, -(2**63) - 1, 10**20, 2**31, -(2**31) - 1, -1, 0]
NUMBERS = [1e308, -1e308, float("nan"), float("inf"), float("-inf"), 5e-324, 2.0**60]
TIMES = [
    "9999-12-31T23:59:59-14:00",
    "0001-01-01T00:00:00+14:00",
    "3000-01-01T00:00:00Z",
    "1969-12-31T23:59:59Z",
    "99999999999999999999",
    "-99999999999",
    "1e20",
]
TEXTS = ["x" * 5000, "a\x00b", "%00", "../../etc/passwd", "企业登记" * 40, ""]
METHODS = ("get", "post", "put", "patch", "delete")


def _resolve(schema: dict, components: dict) -> dict:
    for _ in range(20):
        if "$ref" not in schema:
            break
        schema = components[schema["$ref"].rsplit("/", 1)[-1]]
    return schema


def _branches(schema: dict, components: dict) -> list[dict]:
    schema = _resolve(schema, components)
    alts = schema.get("anyOf") or schema.get("oneOf")
    if not alts:
        return [schema]
    return [b for alt in alts for b in _branches(alt, components) if b.get("type") != "null"] or [schema]


def _kind(schema: dict, components: dict) -> str:
    for b in _branches(schema, components):
        if b.get("type") == "array":
            return _kind(b.get("items", {}), components)
        if b.get("type") in ("integer", "number"):
            return b["type"]
        if b.get("type") == "string":
            return "time" if b.get("format") == "date-time" else "string"
        if b.get("type") == "boolean":
            return "boolean"
    return "string"


def _edges(kind: str, name: str) -> list:
    if kind == "integer":
        return INTS
    if kind == "number":
        return NUMBERS + INTS[:3]
    if kind == "time" or name in ("since", "until"):
        return TIMES + TEXTS[:2]
    if kind == "boolean":
        return ["2", "yes-no"]
    return TEXTS


def _plain(schema: dict, components: dict, depth: int = 0):
    """A plain value of the schema's type (enum's first value, integers 1, strings 'sweep')."""
    branches = _branches(schema, components)
    b = branches[0]
    if "enum" in b:
        return b["enum"][0]
    if "default" in b and b["default"] is not None:
        return b["default"]
    t = b.get("type")
    if t == "integer":
        return max(1, b.get("minimum", 1))
    if t == "number":
        return max(1.0, b.get("minimum", 1.0))
    if t == "boolean":
        return False
    if t == "array":
        return []
    if t == "object" or "properties" in b:
        if depth > 4:
            return {}
        return {
            k: _plain(v, components, depth + 1)
            for k, v in b.get("properties", {}).items()
            if k in b.get("required", [])
        }
    if b.get("format") == "date-time":
        return "2026-01-01T00:00:00Z"
    return f"sweep-{RUN}"


def _fields(schema: dict, components: dict, path: tuple = (), depth: int = 0):
    """(path, kind) of every scalar field reachable through objects (arrays: their first item)."""
    if depth > 5:
        return
    for b in _branches(schema, components):
        if b.get("type") == "object" or "properties" in b:
            for k, v in b.get("properties", {}).items():
                yield from _fields(v, components, (*path, k), depth + 1)
            if b.get("additionalProperties") is True or b.get("additionalProperties") == {}:
                yield (*path, f"sweep_{RUN}"), "any"
            return
        if b.get("type") == "array":
            yield from _fields(b.get("items", {}), components, (*path, 0), depth + 1)
            return
        if path:
            yield path, _kind(b, components)
        return


def _put(body, path: tuple, value):
    """`body` with `value` at `path` (objects and lists created on the way)."""
    body = json.loads(json.dumps(body)) if body is not None else {}
    node = body
    for i, step in enumerate(path):
        last = i == len(path) - 1
        nxt = [] if (not last and isinstance(path[i + 1], int)) else {}
        if isinstance(step, int):
            while len(node) <= step:
                node.append(nxt if not last else None)
            if last:
                node[step] = value
            else:
                if not isinstance(node[step], list | dict):
                    node[step] = nxt
                node = node[step]
        else:
            if last:
                node[step] = value
            else:
                if not isinstance(node.get(step), list | dict):
                    node[step] = nxt
                node = node[step]
    return body


def _requests(schema: dict):
    """(method, url, params, headers, content, content-type, what) for every edge case."""
    components = schema.get("components", {}).get("schemas", {})
    for template, item in schema["paths"].items():
        for method in METHODS:
            op = item.get(method)
            if op is None:
                continue
            params = op.get("parameters", []) + item.get("parameters", [])
            plain_path = {
                p["name"]: ("1" if _kind(p.get("schema", {}), components) == "integer" else f"sweep-{RUN}")
                for p in params
                if p["in"] == "path"
            }
            for p in params:
                kind = _kind(p.get("schema", {}), components)
                for value in _edges(kind, p["name"]):
                    raw = value if isinstance(value, str) else repr(value) if isinstance(value, float) else str(value)
                    if p["in"] == "path" and raw in ("", "../../etc/passwd"):
                        continue  # another route, not this one
                    values = dict(plain_path)
                    query, headers = {}, {}
                    if p["in"] == "path":
                        values[p["name"]] = raw
                    elif p["in"] == "query":
                        query[p["name"]] = raw
                    elif p["in"] == "header":
                        if "\x00" in raw:
                            continue  # not sendable in a header
                        headers[p["name"]] = raw.encode("utf-8")  # bytes: sent as they are
                    else:
                        continue
                    url = template.format(**{k: quote(v, safe="") for k, v in values.items()})
                    yield method, url, query, headers, None, None, f"{p['in']} {p['name']}={raw[:40]!r}"
            body = op.get("requestBody", {}).get("content", {})
            url = template.format(**plain_path)
            for ctype in ("application/json", "application/x-www-form-urlencoded"):
                if ctype not in body:
                    continue
                body_schema = body[ctype]["schema"]
                base = _plain(body_schema, components)
                for path, kind in _fields(body_schema, components):
                    kinds = ("integer", "number", "time", "string") if kind == "any" else (kind,)
                    for k in kinds:
                        for value in _edges(k, str(path[-1])):
                            if ctype == "application/json":
                                content = json.dumps(
                                    _put(base, path, value)
                                ).encode()  # NaN/Infinity as Python writes them
                            else:
                                form = {**{kk: str(vv) for kk, vv in (base or {}).items()}, str(path[0]): str(value)}
                                content = urlencode(form).encode()
                            yield (
                                method,
                                url,
                                {},
                                {},
                                content,
                                ctype,
                                f"body {'.'.join(map(str, path))}={str(value)[:40]!r}",
                            )


def _sweep(api: httpx.Client) -> None:
    schema = api.get("/openapi.json").json()
    failures, count = [], 0
    for method, url, query, headers, content, ctype, what in _requests(schema):
        if ctype:
            headers = {**headers, "content-type": ctype}
        try:
            r = api.request(method.upper(), url, params=query, headers=headers, content=content, timeout=60)
        except httpx.TransportError as exc:  # a reset connection is as bad as a 500
            failures.append(f"{method.upper()} {url} {what}: {type(exc).__name__}")
            continue
        count += 1
        if r.status_code >= 500:
            failures.append(f"{method.upper()} {url} {what}: {r.status_code} {r.text[:200]}")
    assert count > 500, count
    assert not failures, f"{len(failures)} of {count} requests answered a server error:\n" + "\n".join(failures[:80])


@pytest.mark.timeout(900)
def test_edge_values_on_every_route_never_answer_a_server_error(api):
    """The session's API: a PostgreSQL control DB, as in a many-process deployment."""
    _sweep(api)


@pytest.fixture(scope="module")
def sqlite_api(stack_settings, tmp_path_factory):
    """The API of a default installation: a SQLite control DB file (its integers overflow differently)."""
    from api.auth import api_key_for

    settings = stack_settings.model_copy(update={"state_dir": tmp_path_factory.mktemp("sweep"), "control_db_url": ""})
    proc, base = start_api(settings, settings.api_port + 38)
    client = httpx.Client(base_url=base, headers={"X-API-Key": api_key_for(settings)}, timeout=60)
    yield client
    client.close()
    stop_api(proc)


@pytest.mark.timeout(900)
def test_edge_values_never_answer_a_server_error_on_a_sqlite_control_db(sqlite_api):
    _sweep(sqlite_api)
