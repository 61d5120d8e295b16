"""Confluent wire format: magic byte 0, 4-byte big-endian schema id, Avro binary body.

Registration and look-ups go through confluent-kafka's SchemaRegistryClient, so the same code
works against our registry and a Confluent one; parsed schemas are cached per id, and the body
is written with fastavro's schemaless encoder, or for a batch column by column
(schemas.batch_avro, the hot path of every source).
"""

from __future__ import annotations

import io
import json
import struct
from typing import TYPE_CHECKING, Any

import fastavro
from confluent_kafka.schema_registry import Schema, SchemaRegistryClient

if TYPE_CHECKING:
    from schemas.batch_avro import BatchEncoder

# schemas.batch_avro (numpy, pyarrow) is imported when a schema's batch encoder is first built: a
# process that encodes or decodes one record at a time (the API) does not load them.

_HEADER = struct.Struct(">bI")


class UndecodableRecord(ValueError):
    """Bytes that are not a Confluent-framed Avro record we can read; the reason says why."""


class WireCodec:
    def __init__(self, registry_url: str | SchemaRegistryClient):
        self.registry = (
            registry_url
            if isinstance(registry_url, SchemaRegistryClient)
            else SchemaRegistryClient({"url": registry_url})
        )
        self._by_id: dict[int, Any] = {}
        self._ids: dict[tuple[str, str], int] = {}
        self._batch: dict[int, BatchEncoder | None] = {}  # None: schema not batch-encodable

    def register(self, subject: str, schema: dict) -> int:
        text = json.dumps(schema, sort_keys=True)
        cached = self._ids.get((subject, text))
        if cached is not None:
            return cached
        schema_id = self.registry.register_schema(subject, Schema(json.dumps(schema), "AVRO"))
        self._ids[(subject, text)] = schema_id
        self._by_id.setdefault(schema_id, fastavro.parse_schema(schema))
        return schema_id

    def parsed(self, schema_id: int):
        parsed = self._by_id.get(schema_id)
        if parsed is None:
            try:
                fetched = self.registry.get_schema(schema_id)
            except Exception as exc:  # the registry answers 40403 for an unknown id
                raise UndecodableRecord(f"unknown schema id {schema_id}: {exc}") from exc
            parsed = fastavro.parse_schema(json.loads(fetched.schema_str))
            self._by_id[schema_id] = parsed
        return parsed

    def encode(self, schema_id: int, record: dict) -> bytes:
        buf = io.BytesIO()
        buf.write(_HEADER.pack(0, schema_id))
        fastavro.schemaless_writer(buf, self.parsed(schema_id), record)
        return buf.getvalue()

    def _batch_encoder(self, schema_id: int) -> BatchEncoder | None:
        if schema_id not in self._batch:
            from schemas.batch_avro import BatchEncoder, UnsupportedSchema

            try:
                self._batch[schema_id] = BatchEncoder(self.schema_of(schema_id))
            except UnsupportedSchema:
                self._batch[schema_id] = None
        return self._batch[schema_id]

    def encode_many(self, schema_id: int, records: list[dict]) -> list[bytes]:
        """encode() of each record, in one columnar pass where the schema allows it. Raises
        BatchEncodeError (or fastavro's error) if any record does not fit: the caller then
        encodes record by record to find it."""
        encoder = self._batch_encoder(schema_id)
        if encoder is None:
            return [self.encode(schema_id, r) for r in records]
        return encoder.encode(records, prefix=_HEADER.pack(0, schema_id))

    def arrow_type(self, schema_id: int):
        """The Arrow struct type `encode_arrow` takes for this schema, or None if the schema is not
        batch-encodable (then encode dicts)."""
        encoder = self._batch_encoder(schema_id)
        return encoder.arrow_type if encoder is not None else None

    def encode_arrow(self, schema_id: int, records) -> list[bytes]:
        """encode() of each record of an Arrow struct array of type `arrow_type(schema_id)`."""
        encoder = self._batch_encoder(schema_id)
        if encoder is None:
            from schemas.batch_avro import UnsupportedSchema

            raise UnsupportedSchema(f"schema {schema_id} is not batch-encodable")
        return encoder.encode_arrow(records, prefix=_HEADER.pack(0, schema_id))

    def decode(self, data: bytes | None, whole: bool = False) -> tuple[int, dict]:
        """(schema id, record). whole=True also refuses a body with bytes left after the record."""
        if data is None or len(data) < 5:
            raise UndecodableRecord("record is shorter than the 5-byte Confluent header")
        magic, schema_id = _HEADER.unpack_from(data)
        if magic != 0:
            raise UndecodableRecord(f"unknown magic byte {magic} (expected 0, Confluent wire format)")
        parsed = self.parsed(schema_id)
        body = io.BytesIO(data)
        body.seek(5)
        try:
            record = fastavro.schemaless_reader(body, parsed)
        except Exception as exc:
            raise UndecodableRecord(f"Avro body does not match schema id {schema_id}: {exc}") from exc
        if whole and body.tell() != len(data):
            raise UndecodableRecord(
                f"Avro body has {len(data) - body.tell()} bytes after the record of schema id {schema_id}"
            )
        return schema_id, record

    def schema_of(self, schema_id: int) -> dict:
        return json.loads(self.registry.get_schema(schema_id).schema_str)
