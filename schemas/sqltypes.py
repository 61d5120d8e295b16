"""SQL column types (SQLAlchemy reflection) to Avro types with logical types.

A type with no mapping is an error naming table and column, unless the connector asked for
unknown types to be passed as strings (`unknown_types="string"`).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import sqlalchemy.types as sa


class UnmappedTypeError(ValueError):
    pass


@dataclass(frozen=True, slots=True)
class ColumnSpec:
    name: str
    sql_type: Any  # a SQLAlchemy TypeEngine instance
    nullable: bool = True
    primary_key: bool = False


def _decimal(t: sa.Numeric) -> dict:
    precision = t.precision or 38
    scale = t.scale if t.scale is not None else 10
    return {"type": "bytes", "logicalType": "decimal", "precision": precision, "scale": scale}


def base_avro_type(column: ColumnSpec, table: str, unknown_types: str = "error") -> Any:
    # Imported here: a runner or sink imports this module (through schemas.envelope) but never maps
    # SQL types, and SQLAlchemy is 32 MB of its resident memory.
    import sqlalchemy.types as sa

    t = column.sql_type
    # Order matters: Boolean/Integer/... are checked before their broader parents.
    if isinstance(t, sa.Boolean):
        return "boolean"
    if isinstance(t, (sa.SmallInteger, sa.Integer)) and not isinstance(t, sa.BigInteger):
        return "int"
    if isinstance(t, sa.BigInteger):
        return "long"
    if isinstance(t, sa.Float) or type(t).__name__.upper() in {"REAL", "DOUBLE", "DOUBLE_PRECISION"}:
        return "double"
    if isinstance(t, sa.Numeric):
        return _decimal(t)
    if isinstance(t, sa.DateTime):
        return {"type": "long", "logicalType": "timestamp-micros"}
    if isinstance(t, sa.Date):
        return {"type": "int", "logicalType": "date"}
    if isinstance(t, sa.Time):
        return {"type": "long", "logicalType": "time-micros"}
    if isinstance(t, sa.Uuid) or type(t).__name__.upper() == "UUID":
        return {"type": "string", "logicalType": "uuid"}
    if isinstance(t, (sa.String, sa.Text, sa.Enum)):
        return "string"
    if isinstance(t, sa.LargeBinary) or type(t).__name__.upper() in {"BYTEA", "BLOB", "VARBINARY"}:
        return "bytes"
    if isinstance(t, sa.NullType) and unknown_types != "string":
        pass
    if unknown_types == "string":
        return "string"
    raise UnmappedTypeError(
        f"table {table!r} column {column.name!r}: SQL type {t!r} has no Avro mapping; "
        "set unknown_types: string on the connector to pass it as text"
    )


def avro_field(column: ColumnSpec, table: str, unknown_types: str = "error") -> dict:
    avro_type = base_avro_type(column, table, unknown_types)
    if column.nullable and not column.primary_key:
        return {"name": column.name, "type": ["null", avro_type], "default": None}
    return {"name": column.name, "type": avro_type}
