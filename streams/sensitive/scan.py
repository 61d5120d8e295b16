"""Samples of a catalogue dataset's fields, and the scan of them.

    samples = sample_clickhouse(client, "default.people", ["id", "phone"], limit=1000)
    samples = sample_topic(bootstrap, registry_url, "clean.people", limit=1000)
    result = scan(samples)     # {"findings": [Finding.as_dict(), ...], "clear": [field, ...], "sampled": n}

ClickHouse samples are read as text (`toString`), parameterised apart from the checked, quoted
identifiers, bounded in rows and time, read-only. Topic samples are the row images of the first
messages of each partition (a change event's `after`, else the record itself), decoded from Avro.
"""

from __future__ import annotations

from typing import Any

from streams.sensitive.detect import detect_field

MAX_SAMPLE = 10_000


def _ident(name: str) -> str:
    from sinks.clickhouse.reader import identifier

    return identifier(name)


def sample_clickhouse(client, qualified: str, fields: list[str], limit: int = 1000) -> dict[str, list[Any]]:
    """`qualified` is `database.table` (or `table`); every field as text, `limit` rows at most."""
    if not fields:
        return {}
    database, _, table = qualified.rpartition(".")
    source = f"{_ident(database)}.{_ident(table)}" if database else _ident(table)
    sql = f"SELECT {', '.join(f'toString({_ident(f)})' for f in fields)} FROM {source} LIMIT %(n)s"
    settings = {"max_execution_time": 30, "readonly": 2, "max_result_rows": MAX_SAMPLE, "result_overflow_mode": "break"}
    rows = client.execute(sql, {"n": min(int(limit), MAX_SAMPLE)}, settings=settings)
    return {f: [row[i] for row in rows] for i, f in enumerate(fields)}


def row_image(value: Any) -> dict[str, Any] | None:
    """A change event's row after the change (None for a delete), else the record itself."""
    if not isinstance(value, dict):
        return None
    if "after" in value and "op" in value:
        return value["after"] if isinstance(value["after"], dict) else None
    return value


def sample_topic(bootstrap: str, registry_url: str, topic: str, limit: int = 1000) -> dict[str, list[Any]]:
    from streams.topics_browse import partitions, read_messages

    parts = partitions(bootstrap).get(topic)
    if parts is None:
        raise LookupError(f"no topic {topic!r} on the broker")
    samples: dict[str, list[Any]] = {}
    left = min(int(limit), MAX_SAMPLE)  # messages still to read, whichever partitions hold them
    for p in parts:
        offset = 0
        while offset is not None and left > 0:
            page = read_messages(bootstrap, registry_url, topic, p, offset, min(500, left))
            for item in page["items"]:
                row = row_image(item.get("value"))
                for name, v in (row or {}).items():
                    samples.setdefault(name, []).append(None if isinstance(v, dict | list) else v)
            left -= len(page["items"])
            offset = None if page["at_end"] or not page["items"] else page["next"]
    return samples


def scan(samples: dict[str, list[Any]]) -> dict[str, Any]:
    findings, clear = [], []
    for name, values in samples.items():
        found = detect_field(name, values)
        if found:
            findings.append(found.as_dict())
        else:
            clear.append(name)
    return {
        "findings": findings,
        "clear": clear,
        "sampled": max((len(v) for v in samples.values()), default=0),
    }
