"""Topic and subject names: `<prefix>.<system>.<schema>.<table>`, with `.clean` / `.quarantine` suffixes."""

from __future__ import annotations

import re

_UNSAFE = re.compile(r"[^A-Za-z0-9_\-]")
QUARANTINE_SUFFIX = ".quarantine"
CLEAN_SUFFIX = ".clean"


def _part(value: str) -> str:
    # Kafka topic names allow [A-Za-z0-9._-]; dots separate our name parts, so they are replaced too.
    return _UNSAFE.sub("_", value)


def topic_name(prefix: str, system: str, schema: str | None, table: str) -> str:
    return ".".join(_part(p) for p in (prefix, system, schema or "default", table))


def quarantine_topic(topic: str) -> str:
    return topic + QUARANTINE_SUFFIX


def clean_topic(topic: str) -> str:
    return topic + CLEAN_SUFFIX


def value_subject(topic: str) -> str:
    return f"{topic}-value"


def key_subject(topic: str) -> str:
    return f"{topic}-key"


def avro_name(value: str) -> str:
    """An Avro name: letters, digits and underscores, not starting with a digit."""
    cleaned = re.sub(r"[^A-Za-z0-9_]", "_", value)
    return cleaned if not cleaned[:1].isdigit() else "_" + cleaned
