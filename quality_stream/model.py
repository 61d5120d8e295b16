"""Value objects shared by every rule: specs, violations and batch verdicts."""

from __future__ import annotations

from dataclasses import dataclass
from dataclasses import field as dc_field
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

Dimension = Literal["completeness", "validity", "uniqueness", "consistency", "accuracy", "timeliness"]
Severity = Literal["reject", "warn"]


class RuleSpec(BaseModel):
    """Settings common to every rule kind; each kind subclasses this with its own fields.

    extra="forbid" so a typo in a rule file is refused instead of silently ignored.
    """

    model_config = ConfigDict(extra="forbid")

    id: str = Field(min_length=1)
    kind: str
    dimension: Dimension | None = None  # None -> the kind's default dimension
    severity: Severity = "reject"
    message: str | None = None
    description: str | None = None
    fields: list[str] = Field(default_factory=list)


@dataclass(frozen=True, slots=True)
class Violation:
    rule_id: str
    field: str | None
    message: str
    severity: str
    dimension: str


@dataclass(slots=True)
class BatchVerdict:
    """Outcome of evaluating one micro-batch; row indices refer to the input list."""

    row_count: int
    valid_rows: list[int]
    rejected: dict[int, list[Violation]] = dc_field(default_factory=dict)
    warnings: dict[int, list[Violation]] = dc_field(default_factory=dict)

    def split(self, rows: list[dict]) -> tuple[list[dict], list[dict]]:
        """Return (valid rows, rejected rows) from the batch that produced this verdict."""
        valid = [rows[i] for i in self.valid_rows]
        rejected = [rows[i] for i in sorted(self.rejected)]
        return valid, rejected

    def violations(self) -> list[tuple[int, Violation]]:
        out = [(i, v) for i, vs in self.rejected.items() for v in vs]
        out += [(i, v) for i, vs in self.warnings.items() for v in vs]
        return sorted(out, key=lambda p: p[0])

    @property
    def is_clean(self) -> bool:
        return not self.rejected and not self.warnings
