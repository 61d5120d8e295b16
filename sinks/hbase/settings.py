"""Settings of the HBase sink (one sink task writes one Huiliu target = one HBase table)."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator


class HBaseSinkSettings(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    # HBase Thrift (v1) server, as started by `hbase thrift start` (default port 9090).
    host: str = "localhost"
    port: int = Field(9090, ge=1, le=65535)
    # Must match the server: `hbase thrift start` (threadpool) = buffered + binary;
    # the -hsha / -nonblocking / -threadedselector modes need framed.
    transport: Literal["buffered", "framed"] = "buffered"
    protocol: Literal["binary", "compact"] = "binary"
    # Socket timeout so a hung server surfaces as a retryable SinkError instead of a stuck task.
    timeout_ms: int = Field(30_000, gt=0)

    # Target table: `<namespace>:<table_prefix>_<table>` (each part optional but `table`).
    table: str = Field(min_length=1)
    namespace: str | None = None  # must already exist: Thrift v1 cannot create namespaces
    table_prefix: str | None = None

    # Row key: `<salt>|<pk1>|<pk2>...`; salt = md5(joined key)[0] % salt_buckets as 2 hex chars.
    # Pre-split the table on these prefixes in production so buckets land on different regions.
    salt_buckets: int = Field(16, ge=1, le=256)

    # Mutations (cells) per Thrift mutateRows call when flushing.
    batch_size: int = Field(1000, gt=0)

    # Column family naming: family = family_map[source table] if present, else the source table
    # name ("table") or "<schema>_<table>" ("schema_table", for sources where names repeat
    # across schemas). family_map keys are also created up front with the table, because
    # Thrift v1 cannot add a family to an existing table later.
    family_naming: Literal["table", "schema_table"] = "table"
    family_map: dict[str, str] = Field(default_factory=dict)
    # Extra options for new families (happybase create_table style, e.g. {"max_versions": 1}).
    family_options: dict[str, int | str | bool] = Field(default_factory=lambda: {"max_versions": 1})

    @field_validator("namespace", "table_prefix", "table")
    @classmethod
    def _no_colon(cls, v: str | None) -> str | None:
        # ':' separates namespace from table name in HBase.
        if v is not None and ":" in v:
            raise ValueError("must not contain ':' (use `namespace` for the HBase namespace)")
        return v

    @property
    def table_name(self) -> str:
        """Full HBase table name as sent over Thrift."""
        name = f"{self.table_prefix}_{self.table}" if self.table_prefix else self.table
        return f"{self.namespace}:{name}" if self.namespace else name
