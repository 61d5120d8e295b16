"""What a harvester reports: a system, its datasets and their fields, as plain data.

Harvesters (relational inspection, topics and registry subjects, sink tables) build these; the
store compares them with the last version and keeps a new one only when the shape changed.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

# Dataset properties that describe its shape: a change of one of these is a new version.
# Everything else (row estimates, sizes, partitions) is a statistic, updated in place.
SHAPE_PROPERTIES = ("comment", "primary_key", "kind_detail", "subject_version")


@dataclass
class FieldInfo:
    name: str
    type: str
    position: int
    nullable: bool = True
    key: bool = False
    default: str | None = None
    comment: str | None = None
    avro_type: str | None = None

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class DatasetInfo:
    urn: str
    name: str  # the name people read: schema.table, a topic, db.table
    kind: str  # table | view | topic | sink_table
    fields: list[FieldInfo]
    properties: dict[str, Any] = field(default_factory=dict)

    def shape(self) -> dict[str, Any]:
        """What a version holds: the kind, the fields and the shape properties."""
        return {
            "kind": self.kind,
            "fields": [f.as_dict() for f in self.fields],
            "properties": {k: self.properties[k] for k in SHAPE_PROPERTIES if self.properties.get(k) is not None},
        }


@dataclass
class SystemInfo:
    urn: str
    name: str
    kind: str  # postgres | mysql | sqlite | kafka | clickhouse ...
    properties: dict[str, Any] = field(default_factory=dict)


@dataclass
class Harvest:
    system: SystemInfo
    datasets: list[DatasetInfo]
    errors: list[str] = field(default_factory=list)  # what could not be read, by dataset name
