"""Decode Confluent-framed Avro (magic byte 0, 4-byte big-endian schema id, Avro body).

Writer schemas are fetched once per id from the registry over HTTP (`GET /schemas/ids/{id}`)
with plain urllib, so this works in the PyFlink venv without confluent-kafka.
"""

from __future__ import annotations

import io
import json
import struct
import urllib.request

import fastavro

_HEADER = struct.Struct(">bI")


class Undecodable(ValueError):
    pass


class ConfluentAvroDecoder:
    def __init__(self, registry_url: str, timeout: float = 10.0):
        self.registry_url = registry_url.rstrip("/")
        self.timeout = timeout
        self._schemas: dict[int, object] = {}

    def schema(self, schema_id: int):
        parsed = self._schemas.get(schema_id)
        if parsed is None:
            url = f"{self.registry_url}/schemas/ids/{schema_id}"
            try:
                with urllib.request.urlopen(url, timeout=self.timeout) as resp:
                    body = json.loads(resp.read())
            except Exception as exc:
                raise Undecodable(f"unknown schema id {schema_id}: {exc}") from exc
            parsed = self._schemas[schema_id] = fastavro.parse_schema(json.loads(body["schema"]))
        return parsed

    def decode(self, data: bytes | None) -> tuple[int, dict]:
        if data is None or len(data) < 5:
            raise Undecodable("record is shorter than the 5-byte Confluent header")
        magic, schema_id = _HEADER.unpack_from(data)
        if magic != 0:
            raise Undecodable(f"unknown magic byte {magic}")
        try:
            return schema_id, fastavro.schemaless_reader(io.BytesIO(data[5:]), self.schema(schema_id))
        except Undecodable:
            raise
        except Exception as exc:
            raise Undecodable(f"Avro body does not match schema id {schema_id}: {exc}") from exc
