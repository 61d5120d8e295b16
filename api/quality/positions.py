"""Where a quarantined record is: its partition and offset in the quarantine topic (request bodies of
the quarantine replay and of tickets opened from records)."""

from __future__ import annotations

from pydantic import BaseModel, Field


class Position(BaseModel):
    model_config = {"extra": "forbid"}
    partition: int = Field(ge=0, le=100_000)
    offset: int = Field(ge=0, le=2**62)
