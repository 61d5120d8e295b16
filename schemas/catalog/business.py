"""Business and management metadata a steward edits (PATCH /metadata/datasets/{urn}): checked here,
so an unknown field or value is refused with its name, whoever calls."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

# The default classification scheme, after the national practice of grading data (public, internal,
# sensitive, secret: 公开 / 内部 / 敏感 / 涉密).
CLASSIFICATIONS = ("public", "internal", "sensitive", "secret")
LIFECYCLE = ("draft", "active", "deprecated", "archived")
Short = Field(None, max_length=200)


class FieldBusiness(BaseModel):
    model_config = ConfigDict(extra="forbid")

    description: str | None = Field(None, max_length=2000)
    classification: Literal[CLASSIFICATIONS] | None = None  # type: ignore[valid-type]
    tags: list[str] | None = Field(None, max_length=50)


class BusinessPatch(BaseModel):
    """Only the keys sent change; `null` clears one."""

    model_config = ConfigDict(extra="forbid")

    description: str | None = Field(None, max_length=2000)
    owner: str | None = Short
    steward: str | None = Short
    department: str | None = Short
    update_frequency: str | None = Field(None, max_length=100)
    tags: list[str] | None = Field(None, max_length=50)
    classification: Literal[CLASSIFICATIONS] | None = None  # type: ignore[valid-type]
    lifecycle: Literal[LIFECYCLE] | None = None  # type: ignore[valid-type]
    retention: str | None = Field(None, max_length=500)
    properties: dict[str, str] | None = Field(None, max_length=100)
    fields: dict[str, FieldBusiness] | None = Field(None, max_length=5000, description="per-field metadata by name")

    def changes(self) -> dict:
        return self.model_dump(exclude_unset=True)


def apply(current: dict, patch: BusinessPatch) -> dict:
    """The business metadata after `patch`; per-field entries merge key by key."""
    out = dict(current)
    for key, value in patch.changes().items():
        if key == "fields" and value is not None:
            fields = dict(out.get("fields") or {})
            for name, entry in value.items():
                merged = {**fields.get(name, {}), **entry}
                fields[name] = {k: v for k, v in merged.items() if v is not None}
            out["fields"] = fields
        elif value is None:
            out.pop(key, None)
        else:
            out[key] = value
    return out
