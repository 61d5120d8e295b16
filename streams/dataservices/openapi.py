"""The OpenAPI description of one published service version, generated from its ServiceSpec.

    document(spec, version, columns=None) -> an OpenAPI 3.0 document (dict)

Parameters are the declared filters with their operators (`field`, `field.in`, `field.gte`,
`field.lte`), `limit` and `offset`; the response lists the exposed fields (an application sees the
part granted to it, masked). `columns` ({name: ClickHouse type}, when the table answers) types them.
"""

from __future__ import annotations

from typing import Any

from streams.dataservices.access import WINDOW_S

_REFUSALS = {
    "401": "no credential, unknown / revoked / expired credential, bad signature, stale timestamp, replayed nonce",
    "403": "another service's credential, or a client IP outside the application's allowlist",
    "404": "the version is not published",
    "422": "a parameter that is not declared, of the wrong type or out of range",
    "429": "rate limit or daily / monthly quota reached (Retry-After: seconds)",
    "503": "the data store is not answering",
}


def _schema(ch_type: str | None) -> dict[str, Any]:
    base = (ch_type or "String").removeprefix("Nullable(").removeprefix("LowCardinality(").rstrip(")")
    if base.startswith(("Int", "UInt")):
        return {"type": "integer"}
    if base.startswith(("Float", "Decimal")):
        return {"type": "number"}
    if base.startswith("DateTime"):
        return {"type": "string", "format": "date-time"}
    if base.startswith("Date"):
        return {"type": "string", "format": "date"}
    return {"type": "string"}


def _parameters(spec, columns: dict[str, str]) -> list[dict[str, Any]]:
    out = []
    for f in spec.filters:
        schema = _schema(columns.get(f.field))
        if "eq" in f.ops:
            out.append({"name": f.field, "in": "query", "required": f.required, "schema": schema})
        if "in" in f.ops:
            out.append(
                {
                    "name": f"{f.field}.in",
                    "in": "query",
                    "required": False,
                    "description": "comma-separated values (1..1000)",
                    "schema": {"type": "string"},
                }
            )
        if "range" in f.ops:
            for suffix, word in (("gte", "at least"), ("lte", "at most")):
                out.append(
                    {
                        "name": f"{f.field}.{suffix}",
                        "in": "query",
                        "required": False,
                        "description": f"{f.field} {word}",
                        "schema": schema,
                    }
                )
    out.append(
        {
            "name": "limit",
            "in": "query",
            "schema": {"type": "integer", "minimum": 1, "maximum": spec.max_limit, "default": spec.default_limit},
        }
    )
    out.append({"name": "offset", "in": "query", "schema": {"type": "integer", "minimum": 0, "default": 0}})
    return out


def document(spec, version: int, columns: dict[str, str] | None = None) -> dict[str, Any]:
    columns = columns or {}
    row = {
        "type": "object",
        "description": "the fields granted to the calling application, masked per its classification",
        "properties": {f: _schema(columns.get(f)) for f in spec.fields},
    }
    signed = {
        h: {"type": "apiKey", "in": "header", "name": h}
        for h in ("X-App-Key-Id", "X-Timestamp", "X-Nonce", "X-Signature")
    }
    return {
        "openapi": "3.0.3",
        "info": {
            "title": spec.title or spec.name,
            "description": (spec.description or "")
            + "\n\nSigned requests: X-Signature = hex HMAC-SHA256(secret, METHOD\\nPATH\\nsorted percent-encoded "
            f"query\\nX-Timestamp\\nX-Nonce\\nhex SHA-256(body)); timestamp within ±{WINDOW_S} s, nonce used once.",
            "version": str(version),
        },
        "paths": {
            f"/services/{spec.name}/v{version}": {
                "get": {
                    "operationId": f"{spec.name}_v{version}",
                    "summary": spec.title or spec.name,
                    "parameters": _parameters(spec, columns),
                    "security": [{"appKey": []}, {k: [] for k in signed}],
                    "responses": {
                        "200": {
                            "description": "the rows",
                            "content": {
                                "application/json": {
                                    "schema": {
                                        "type": "object",
                                        "properties": {
                                            "service": {"type": "string"},
                                            "version": {"type": "integer"},
                                            "application": {"type": "string"},
                                            "limit": {"type": "integer"},
                                            "offset": {"type": "integer"},
                                            "count": {"type": "integer"},
                                            "rows": {"type": "array", "items": row},
                                        },
                                    }
                                }
                            },
                        },
                        **{code: {"description": why} for code, why in _REFUSALS.items()},
                    },
                }
            }
        },
        "components": {
            "securitySchemes": {"appKey": {"type": "apiKey", "in": "header", "name": "X-App-Key"}, **signed}
        },
    }
