"""Parse submitted schemas and derive the key used to decide "same schema".

Identity is the parsed schema re-serialised as sorted, compact JSON: it
ignores whitespace, key order and full-name-vs-namespace spelling, but keeps
defaults, docs and aliases (Avro's Parsing Canonical Form drops those, and two
schemas differing only in a default must not share an id).
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass

import avro.schema
from avro.name import Names

from . import errors

SUPPORTED_TYPES = ("AVRO",)


@dataclass(frozen=True)
class ParsedSchema:
    schema: avro.schema.Schema
    canonical: str  # identity key
    text: str  # compact form of what the client sent; what GET endpoints return
    schema_type: str = "AVRO"


def parse(
    text: object,
    schema_type: str | None = "AVRO",
    referenced: Sequence[str] = (),
    references: Sequence[dict] = (),
) -> ParsedSchema:
    """Parse `text`; `referenced` are the texts of referenced schemas, dependencies first.

    Referenced named types are parsed into the same Names table first, so the
    main schema can use them by name (Confluent schema references).
    """
    schema_type = (schema_type or "AVRO").upper()
    if schema_type not in SUPPORTED_TYPES:
        raise errors.invalid_schema(f"unsupported schemaType '{schema_type}'; only AVRO is supported")
    if not isinstance(text, str) or not text.strip():
        raise errors.invalid_schema("empty or missing 'schema' field")
    try:
        data = json.loads(text)
    except ValueError as exc:
        raise errors.invalid_schema(f"schema is not valid JSON ({exc})") from exc
    try:
        names = Names()
        for ref_text in referenced:
            avro.schema.make_avsc_object(json.loads(ref_text), names)
        schema = avro.schema.make_avsc_object(data, names)
    except Exception as exc:  # avro raises several unrelated types for bad input
        raise errors.invalid_schema(f"{type(exc).__name__}: {exc}") from exc
    # References are part of identity, as in Confluent.
    refs = sorted(json.dumps(r, sort_keys=True) for r in references)
    identity = [schema.to_json(), refs] if refs else schema.to_json()
    canonical = json.dumps(identity, sort_keys=True, separators=(",", ":"))
    compact = json.dumps(data, separators=(",", ":"), ensure_ascii=False)
    return ParsedSchema(schema=schema, canonical=canonical, text=compact, schema_type=schema_type)
