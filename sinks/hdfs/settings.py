"""Settings of the HDFS sink (WebHDFS endpoint, layout, file format, roll bounds)."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator


class HdfsSinkSettings(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    # NameNode HTTP address (WebHDFS), e.g. http://127.0.0.1:9870 (Hadoop 3) / :50070 (Hadoop 2).
    url: str = Field(min_length=1)
    user: str = "huiliu"
    # Per-request timeout, so a hung NameNode/DataNode surfaces as a retryable SinkError.
    timeout_s: float = Field(60.0, gt=0)

    # Files land in <root>/<table>/dt=YYYY-MM-DD/; in-progress files under <root>/_tmp/ (readers
    # such as Hive and Spark skip paths starting with "_").
    root: str = "/huiliu"
    format: Literal["avro", "parquet"] = "avro"
    # Avro block codec ("null" is fastest).
    avro_codec: Literal["null", "deflate", "snappy"] = "null"
    parquet_compression: Literal["none", "snappy", "zstd", "gzip"] = "snappy"

    # A file is closed (and committed) once its buffered rows reach about roll_bytes or it has
    # been open roll_seconds; flush() closes and commits every open file regardless.
    roll_bytes: int = Field(64 * 1024 * 1024, gt=0)
    roll_seconds: float = Field(600.0, gt=0)
    # The sink runtime reads up to commit_rows events, or for commit_seconds, before it closes the
    # files and commits offsets: fewer, bigger files (HDFS dislikes small ones) and fewer upload
    # round trips; at most one such batch is read again after a crash.
    commit_rows: int = Field(100_000, gt=0)
    commit_seconds: float = Field(10.0, gt=0)

    # An event whose (key, source sequence) was written at one of the last dedupe_offsets offsets
    # of its partition is skipped: the copies a replaying runner or source produces lie within
    # their uncommitted windows behind the original (sinks/hdfs/README.md). 0: write every event.
    dedupe_offsets: int = Field(200_000, ge=0)

    # The date partition comes from this row column when set and present (datetime, date,
    # epoch millis or ISO string), else from the event's ts_ms. Dates are UTC.
    date_field: str | None = None

    @field_validator("root")
    @classmethod
    def _absolute(cls, v: str) -> str:
        if not v.startswith("/"):
            raise ValueError("root must be an absolute HDFS path")
        return v.rstrip("/") or "/"
