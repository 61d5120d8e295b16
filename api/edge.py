"""The edge of the API (issue 14): what every request passes before any route sees it.

One ASGI layer, installed once by `api.app.create_app` (`install_edge(app, settings)`), checks
every route the same way, from the route's own OpenAPI description (so a new route is covered
without doing anything):

- **Size**: a body larger than `api_max_body_bytes` (default 1 MiB) answers 413, whether it
  is announced by Content-Length or streamed (chunked): the body is counted as it arrives.
- **Numbers and times** in path, query, header and body: an integer a route gives no bounds
  to must fit the control DB (path/query/header: its INTEGER columns, -2**31..2**31-1; body:
  BIGINT, -2**63..2**63-1), a number must be finite, a time (`date-time`, and the ISO/epoch
  `since` of /logs through `parse_time`) must lie in 1970..2999 in UTC. Declared bounds win.
- **Text**: no NUL character anywhere (no store of ours holds one). A string a route gives no maxLength to is bounded by what it holds: names and
  identifiers (`name`, `username`, `tenant`, `owner`, `action`, `kind`, `cron`, `depends_on`,
  ... and every path parameter) `NAME_MAX` (200), descriptions and messages `TEXT_MAX`
  (2000), other text `FREE_MAX` (65,536; query and header values `TEXT_MAX`).
- A refusal is 422 with FastAPI's shape, naming the parameter (`loc`), never echoing the value:
  `{"detail": [{"type", "loc", "msg"}], "error_code": 422, "message"}` (the last two are Kafka
  Connect's error shape, which the connector routes answer in).
- **Server errors**: an exception no handler turned into an answer is logged with its traceback
  and answered `500 {"detail", "request_id"}` here, without re-raising, so uvicorn keeps the
  keep-alive connection usable (a re-raised exception made it reset the next request).

It sits inside the audit middleware, so its answers are audited like any other.

    from api.edge import install_edge, parse_time
    parse_time("2026-01-01T00:00:00Z", "since")  # -> aware datetime, or EdgeRefusal (422)
"""

from __future__ import annotations

import json
import logging
import math
import re
from datetime import UTC, datetime
from urllib.parse import parse_qsl

from fastapi import FastAPI
from starlette.routing import compile_path

from deploy.logs import request_id_var

log = logging.getLogger("huiliu.api.edge")

INT32 = (-(2**31), 2**31 - 1)
INT64 = (-(2**63), 2**63 - 1)
FLOAT_MAX = 2.0**53  # beyond it a float no longer holds every integer; no setting of ours needs more
TIME_MIN = datetime(1970, 1, 1, tzinfo=UTC)
TIME_MAX = datetime(3000, 1, 1, tzinfo=UTC)
NAME_MAX = 200
TEXT_MAX = 2000
FREE_MAX = 65536
NAME_KEYS = {
    "name",
    "username",
    "tenant",
    "tenants",
    "owner",
    "action",
    "kind",
    "cron",
    "depends_on",
    "roles",
    "groups",
    "plugin",
    "connector",
    "connector.class",
    "pipeline",
    "schedule",
    "group",
    "rule",
    "category",
    "state",
    "status",
    "type",
    "level",
    "request_id",
    "client_id",
    "grant_type",
    "scope",
    "expand",
}
TEXT_KEYS = {"description", "message", "comment", "reason", "display_name", "title", "note", "q"}
_INT = re.compile(r"^\s*[+-]?\d+\s*$")
_BODY_METHODS = {"POST", "PUT", "PATCH", "DELETE"}


class EdgeRefusal(Exception):
    """A value refused at the edge: 422 naming where it was (`loc`)."""

    def __init__(self, loc: tuple, msg: str, kind: str = "value_error"):
        super().__init__(msg)
        self.loc, self.msg, self.kind = tuple(loc), msg, kind

    def body(self) -> dict:
        where = ".".join(str(p) for p in self.loc)
        return {
            "detail": [{"type": self.kind, "loc": list(self.loc), "msg": self.msg}],
            **_connect_shape(422, f"invalid request: {where}: {self.msg}"),
        }


def parse_time(value: str | float | int | datetime, name: str, where: str = "query") -> datetime:
    """An ISO time (naive = UTC) or epoch seconds, as an aware UTC datetime inside TIME_MIN..TIME_MAX."""
    loc = (where, name)
    if isinstance(value, datetime):
        moment = value
    else:
        text = str(value).strip()
        try:
            number = float(text)
        except ValueError:
            number = None
        if number is not None:
            if not math.isfinite(number) or not TIME_MIN.timestamp() <= number < TIME_MAX.timestamp():
                raise EdgeRefusal(loc, _time_range_msg(), "datetime_out_of_range")
            return datetime.fromtimestamp(number, UTC)
        try:
            moment = datetime.fromisoformat(text.replace("Z", "+00:00").replace("z", "+00:00"))
        except ValueError:
            raise EdgeRefusal(loc, "not an ISO time or epoch seconds", "datetime_parsing") from None
    moment = moment if moment.tzinfo else moment.replace(tzinfo=UTC)
    try:
        moment = moment.astimezone(UTC)
    except OverflowError:
        raise EdgeRefusal(loc, _time_range_msg(), "datetime_out_of_range") from None
    if not TIME_MIN <= moment < TIME_MAX:
        raise EdgeRefusal(loc, _time_range_msg(), "datetime_out_of_range")
    return moment


def _time_range_msg() -> str:
    return f"time out of range: between {TIME_MIN:%Y-%m-%d} and {TIME_MAX:%Y-%m-%d} (UTC)"


# --- the schema walk ---------------------------------------------------------------------------


class _Checker:
    def __init__(self, components: dict):
        self.components = components

    def resolve(self, schema: dict) -> dict:
        seen = 0
        while isinstance(schema, dict) and "$ref" in schema and seen < 20:
            schema = self.components.get(schema["$ref"].rsplit("/", 1)[-1], {})
            seen += 1
        return schema if isinstance(schema, dict) else {}

    def branches(self, schema: dict) -> list[dict]:
        """The alternatives of a schema (anyOf/oneOf flattened), each resolved."""
        schema = self.resolve(schema)
        alternatives = schema.get("anyOf") or schema.get("oneOf")
        if not alternatives:
            return [schema]
        out = []
        for alt in alternatives:
            out.extend(self.branches(alt))
        return out

    # values from path, query and headers: strings as sent
    def check_text(self, raw: str, schema: dict, loc: tuple, name_max: int, other_max: int) -> None:
        _no_nul(raw, loc)
        branches = self.branches(schema)
        if any(b.get("type") == "array" for b in branches):
            branches = [self.resolve(b.get("items", {})) for b in branches if b.get("type") == "array"] or branches
        types = {b.get("type") for b in branches}
        for b in branches:
            t = b.get("type")
            if t == "integer" and _INT.match(raw):
                lo, hi = _bounds(b, INT32)
                if not lo <= int(raw) <= hi:
                    raise EdgeRefusal(loc, f"integer out of range: between {lo} and {hi}", "int_out_of_range")
                return
            if t == "number":
                try:
                    number = float(raw)
                except ValueError:
                    return
                _check_number(number, b, loc)
                return
            if t == "string" and b.get("format") == "date-time":
                try:
                    parse_time(raw, str(loc[-1]), str(loc[0]))
                except EdgeRefusal as exc:
                    if exc.kind == "datetime_out_of_range":
                        raise
                return
        if "string" in types or not types - {None}:
            declared = next((b["maxLength"] for b in branches if "maxLength" in b), None)
            limit = declared if declared is not None else (name_max if _is_name(loc[-1]) else other_max)
            if len(raw) > limit:
                raise EdgeRefusal(loc, f"at most {limit} characters", "string_too_long")

    # values of a JSON (or form) body
    def check_value(self, value, schema: dict | None, loc: tuple, key: str | None) -> None:
        if value is None:
            return
        branches = self.branches(schema) if schema else [{}]
        matching = [b for b in branches if _fits(value, b)]
        if not matching:
            return  # pydantic answers the type error
        errors = []
        for b in matching:
            try:
                self._check_one(value, b, loc, key)
                return
            except EdgeRefusal as exc:
                errors.append(exc)
        raise errors[0]

    def _check_one(self, value, schema: dict, loc: tuple, key: str | None) -> None:
        for part in schema.get("allOf", []):
            self.check_value(value, part, loc, key)
        if isinstance(value, bool):
            return
        if isinstance(value, int):
            lo, hi = _bounds(schema, INT64)
            if not lo <= value <= hi:
                raise EdgeRefusal(loc, f"integer out of range: between {lo} and {hi}", "int_out_of_range")
        elif isinstance(value, float):
            _check_number(value, schema, loc)
        elif isinstance(value, str):
            _no_nul(value, loc)
            if schema.get("format") == "date-time":
                try:
                    parse_time(value, str(loc[-1]), "body")
                except EdgeRefusal as exc:
                    if exc.kind == "datetime_out_of_range":
                        raise EdgeRefusal(loc, exc.msg, exc.kind) from None
            limit = schema.get("maxLength")
            if limit is None:
                limit = NAME_MAX if _is_name(key) else TEXT_MAX if key in TEXT_KEYS else FREE_MAX
            if len(value) > limit:
                raise EdgeRefusal(loc, f"at most {limit} characters", "string_too_long")
        elif isinstance(value, list):
            items = schema.get("items") if schema else None
            for i, item in enumerate(value):
                self.check_value(item, items, (*loc, i), key)
        elif isinstance(value, dict):
            props = schema.get("properties", {}) if schema else {}
            extra = schema.get("additionalProperties") if schema else None
            for k, v in value.items():
                _no_nul(k, (*loc, "(key)"))
                if len(k) > NAME_MAX:
                    raise EdgeRefusal(
                        (*loc, k[:40] + "..."), f"key of at most {NAME_MAX} characters", "string_too_long"
                    )
                sub = props.get(k, extra if isinstance(extra, dict) else None)
                self.check_value(v, sub, (*loc, k), k)


def _no_nul(text: str, loc: tuple) -> None:
    # No store of ours holds a NUL character (PostgreSQL text cannot), nor does any name or path.
    if "\x00" in text:
        raise EdgeRefusal(loc, "the NUL character is not allowed", "string_nul")


def _fits(value, schema: dict) -> bool:
    t = schema.get("type")
    if t is None:
        return True
    if isinstance(value, bool):
        return t == "boolean"
    return {
        "integer": isinstance(value, int),
        "number": isinstance(value, int | float),
        "string": isinstance(value, str),
        "array": isinstance(value, list),
        "object": isinstance(value, dict),
    }.get(t, False)


def _bounds(schema: dict, default: tuple[int, int]) -> tuple[int, int]:
    """The route's own bounds where it declares them, else the default."""
    lo, hi = default
    if "minimum" in schema:
        lo = math.ceil(schema["minimum"])
    if "exclusiveMinimum" in schema:
        lo = math.floor(schema["exclusiveMinimum"]) + 1
    if "maximum" in schema:
        hi = math.floor(schema["maximum"])
    if "exclusiveMaximum" in schema:
        hi = math.ceil(schema["exclusiveMaximum"]) - 1
    return lo, hi


def _check_number(number: float, schema: dict, loc: tuple) -> None:
    if not math.isfinite(number):
        raise EdgeRefusal(loc, "number must be finite", "finite_number")
    lo = schema.get("minimum", schema.get("exclusiveMinimum", -FLOAT_MAX))
    hi = schema.get("maximum", schema.get("exclusiveMaximum", FLOAT_MAX))
    if not lo <= number <= hi:
        raise EdgeRefusal(loc, f"number out of range: between {lo} and {hi}", "number_out_of_range")


def _is_name(key) -> bool:
    return isinstance(key, str) and (key in NAME_KEYS or key.endswith("_name") and key != "display_name")


# --- the middleware ----------------------------------------------------------------------------


class _TooLarge(Exception):
    pass


class EdgeMiddleware:
    def __init__(self, app, api: FastAPI, max_body_bytes: int):
        self.app = app
        self.api = api
        self.max_body = max_body_bytes
        self._openapi: dict | None = None
        self._paths: dict[str | None, list] = {}  # first path segment -> (regex, operations), documented order

    def _operation(self, scope) -> tuple[dict | None, dict]:
        """The OpenAPI operation of the route this request goes to, and its path parameters (the
        first documented path template matching the path and method, as the router picks)."""
        if self._openapi is None:
            try:
                self._openapi = self.api.openapi()
                self._paths = _by_first_segment(self._openapi.get("paths", {}))
            except Exception:  # no description, no parameter checks; the size limit and 500s still hold
                log.exception("the OpenAPI description could not be built: parameters are not checked at the edge")
                self._openapi, self._paths = {}, {}
        method = scope["method"].lower()
        path = scope["path"]
        segment = path.split("/", 2)[1] if path.startswith("/") else None
        for regex, ops in self._paths.get(segment, self._paths.get(None, [])):
            found = regex.match(scope["path"])
            if found and method in ops:
                return ops[method], found.groupdict()
        return None, {}

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        started = False

        async def tracking_send(message):
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
            await send(message)

        try:
            body = None
            if (
                scope["method"] in _BODY_METHODS
                or _header(scope, b"content-length")
                or _header(scope, b"transfer-encoding")
            ):
                declared = _header(scope, b"content-length")
                if declared and declared.isdigit() and int(declared) > self.max_body:
                    return await self._too_large(scope, send)
                try:
                    body = await _read_body(receive, self.max_body)
                except _TooLarge:
                    return await self._too_large(scope, send)
                if body is None:
                    return  # the client went away
            try:
                self._check(scope, body)
            except EdgeRefusal as exc:
                scope.setdefault("state", {})["audit_reason"] = f"{'.'.join(map(str, exc.loc))}: {exc.msg}"[:300]
                return await _json(send, 422, exc.body())
            await self.app(scope, _replay(body, receive) if body is not None else receive, tracking_send)
        except Exception:
            request_id = request_id_var.get()
            log.exception(
                "request failed: %s %s",
                scope["method"],
                scope["path"],
                extra={"method": scope["method"], "path": scope["path"]},
            )
            if not started:
                await _json(
                    send,
                    500,
                    {
                        "detail": "internal server error; the server log has the details",
                        "request_id": request_id,
                        **_connect_shape(500, "internal server error"),
                    },
                )

    def _check(self, scope, body: bytes | None) -> None:
        op, path_params = self._operation(scope)
        if op is None:
            return
        checker = _Checker(self._openapi.get("components", {}).get("schemas", {}))
        params = {(p.get("in"), p.get("name")): p.get("schema", {}) for p in op.get("parameters", [])}
        for name, raw in path_params.items():
            if ("path", name) in params:
                checker.check_text(str(raw), params[("path", name)], ("path", name), NAME_MAX, NAME_MAX)
        for name, raw in parse_qsl(scope.get("query_string", b"").decode("latin-1"), keep_blank_values=True):
            if ("query", name) in params:
                checker.check_text(raw, params[("query", name)], ("query", name), NAME_MAX, TEXT_MAX)
        for (where, name), schema in params.items():
            if where == "header":
                raw = _header(scope, name.lower().encode("latin-1"))
                if raw is not None:
                    checker.check_text(raw, schema, ("header", name), TEXT_MAX, TEXT_MAX)
        if not body or "requestBody" not in op:
            return
        ctype = (_header(scope, b"content-type") or "").split(";")[0].strip().lower()
        content = op["requestBody"].get("content", {})
        if ctype == "application/json" or ctype.endswith("+json"):
            try:
                value = json.loads(body)
            except ValueError:
                return  # FastAPI answers the JSON error
            schema = content.get("application/json", {}).get("schema")
            checker.check_value(value, schema, ("body",), None)
        elif ctype == "application/x-www-form-urlencoded":
            schema = checker.resolve(content.get(ctype, {}).get("schema", {}))
            props = schema.get("properties", {})
            for k, v in parse_qsl(body.decode("latin-1"), keep_blank_values=True):
                checker.check_value(v, props.get(k), ("body", k), k)

    async def _too_large(self, scope, send) -> None:
        msg = f"request body larger than {self.max_body} bytes (setting api_max_body_bytes)"
        scope.setdefault("state", {})["audit_reason"] = msg
        await _json(send, 413, {"detail": msg, **_connect_shape(413, msg)}, close=True)


def _by_first_segment(paths: dict) -> dict[str | None, list]:
    """The documented paths' regexes and operations, listed under each literal first segment they
    can match (a template starting with a parameter is listed under every one, and under None for
    the others), in documented order: a request is tried against its own segment's list only."""
    compiled = []
    for path, ops in paths.items():
        segment = path.split("/", 2)[1] if path.startswith("/") else "{"
        compiled.append((None if "{" in segment else segment, compile_path(path)[0], ops))
    literals = {segment for segment, _, _ in compiled if segment is not None}
    return {
        key: [(regex, ops) for segment, regex, ops in compiled if segment is None or segment == key]
        for key in (*literals, None)
    }


def _connect_shape(status: int, message: str) -> dict:
    """Kafka Connect's error fields, next to `detail`: the connector routes answer every error in
    that shape (api/routers/connectors.py), and a refusal here comes before any route."""
    return {"error_code": status, "message": message}


def _header(scope, name: bytes) -> str | None:
    for k, v in scope.get("headers", []):
        if k.lower() == name:
            return v.decode("latin-1")
    return None


async def _read_body(receive, limit: int) -> bytes | None:
    chunks, size = [], 0
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            return None
        chunk = message.get("body", b"")
        size += len(chunk)
        if size > limit:
            raise _TooLarge
        chunks.append(chunk)
        if not message.get("more_body", False):
            return b"".join(chunks)


def _replay(body: bytes, receive):
    sent = False

    async def replay():
        nonlocal sent
        if not sent:
            sent = True
            return {"type": "http.request", "body": body, "more_body": False}
        return await receive()  # then the client's disconnect, as Starlette expects

    return replay


async def _json(send, status: int, payload: dict, close: bool = False) -> None:
    body = json.dumps(payload).encode()
    headers = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]
    if close:  # the rest of an over-long body is not read: the connection cannot be reused
        headers.append((b"connection", b"close"))
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body, "more_body": False})


async def _refusal_handler(request, exc: EdgeRefusal):
    from fastapi.responses import JSONResponse

    request.state.audit_reason = f"{'.'.join(map(str, exc.loc))}: {exc.msg}"[:300]
    return JSONResponse(exc.body(), status_code=422)


def install_edge(app: FastAPI, settings) -> None:
    """Add the edge layer; call it before the audit middleware is added (it must sit inside it).
    Routes that parse a value themselves (e.g. /logs `since` through `parse_time`) raise
    EdgeRefusal, answered the same 422."""
    app.add_exception_handler(EdgeRefusal, _refusal_handler)
    app.add_middleware(EdgeMiddleware, api=app, max_body_bytes=settings.api_max_body_bytes)
