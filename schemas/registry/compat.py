"""Compatibility levels and checks, delegated to avro's reader/writer resolver.

BACKWARD: the new schema (reader) must read data written with old schemas.
FORWARD: old schemas (readers) must read data written with the new one.
FULL: both. Non-transitive levels compare with the latest live version only,
_TRANSITIVE ones with every live version.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import avro.schema
from avro.compatibility import ReaderWriterCompatibilityChecker, SchemaCompatibilityType

from . import errors

LEVELS = (
    "NONE",
    "BACKWARD",
    "BACKWARD_TRANSITIVE",
    "FORWARD",
    "FORWARD_TRANSITIVE",
    "FULL",
    "FULL_TRANSITIVE",
)
DEFAULT_LEVEL = "BACKWARD"  # Confluent's default


def validate_level(level: object) -> str:
    if not isinstance(level, str) or level.upper() not in LEVELS:
        raise errors.invalid_compatibility_level(level)
    return level.upper()


def _pair_problems(reader: avro.schema.Schema, writer: avro.schema.Schema, role: str) -> list[str]:
    # A fresh checker per pair: the checker memoises on object identity.
    result = ReaderWriterCompatibilityChecker().get_compatibility(reader, writer)
    if result.compatibility is SchemaCompatibilityType.compatible:
        return []
    kinds = ",".join(sorted(i.name.upper() for i in result.incompatibilities)) or "INCOMPATIBLE"
    details = ",".join(sorted(str(m) for m in result.messages))
    where = ",".join(sorted(result.locations))
    return [f"{{errorType:'{kinds}', description:'{role}', additionalInfo:'{details}', path:'{where}'}}"]


def check_pair(new: avro.schema.Schema, old: avro.schema.Schema, level: str) -> list[str]:
    """Problems (empty if compatible) between the new schema and one old schema."""
    problems: list[str] = []
    if level.startswith("BACKWARD") or level.startswith("FULL"):
        problems += _pair_problems(new, old, "the new schema cannot read data written with the old schema")
    if level.startswith("FORWARD") or level.startswith("FULL"):
        problems += _pair_problems(old, new, "the old schema cannot read data written with the new schema")
    return problems


@dataclass(frozen=True)
class Conflict:
    version: int  # the earlier version the new schema clashes with
    problems: list[str]


def check(
    new: avro.schema.Schema,
    previous: Sequence[tuple[int, avro.schema.Schema]],
    level: str,
) -> list[Conflict]:
    """Check new against (version, schema) pairs ordered oldest first; [] = compatible."""
    if level == "NONE" or not previous:
        return []
    targets = previous if level.endswith("_TRANSITIVE") else previous[-1:]
    conflicts = []
    for version, old in reversed(targets):  # newest first, like Confluent
        problems = check_pair(new, old, level)
        if problems:
            conflicts.append(Conflict(version, problems))
    return conflicts


def verbose_messages(conflicts: Sequence[Conflict], level: str) -> list[str]:
    """Flatten conflicts into the message list Confluent returns with ?verbose=true."""
    messages: list[str] = []
    for c in conflicts:
        messages += c.problems + [f"{{oldSchemaVersion: {c.version}}}"]
    if messages:
        messages.append(f"{{compatibility: '{level}'}}")
    return messages
