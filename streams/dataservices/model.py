"""The service document (what a data service serves and how), and the errors the domain raises.

    spec = ServiceSpec.model_validate(body)      # pydantic: every complaint names the field
    ServiceError(problems) / NotFound / Conflict / Refused (-> 422 / 404 / 409 / 403 in the API)

A service serves one resource (a ClickHouse table the sinks write), exposes `fields`, accepts the
`filters` it declares (operators eq / in / range, some required), pages with `default_limit` and
`max_limit`, masks `masking` fields with the masking transforms (streams/transforms/masking.py:
`phone`, `id_number`, `name`, `email`, `keep`, `redact`, `hash`, ...) and, when the service names
its catalogue entry (`dataset`), every other field by its classification level there
(`classification_masking`: {"internal": ..., "sensitive": ..., "secret": ...}), and limits each application
to `rate_limit` (a token bucket: `rate` per second, `burst` at once).
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, Field, field_validator, model_validator

from quality_stream.governance.model import StandardsError, problem, problems_of
from schemas.catalog.business import CLASSIFICATIONS
from streams.transforms.masking import resolve

IDENT = r"^[A-Za-z_][A-Za-z0-9_]{0,127}$"
NAME = r"^[a-z][a-z0-9_]{1,62}$"
OPS = ("eq", "in", "range")

__all__ = ["Conflict", "NotFound", "Refused", "ServiceError", "ServiceSpec", "problem", "problems_of"]


class ServiceError(StandardsError):
    """Bad input: `problems` name each field, in English and Chinese (HTTP 422)."""


class Conflict(ServiceError):
    """Not possible in the object's state (HTTP 409)."""


class Refused(ServiceError):
    """The caller may not do this (the author reviewing their own service, a non-owner deciding) (HTTP 403)."""


class NotFound(LookupError):
    """Unknown (or another tenant's) service, version or application."""


class Resource(BaseModel):
    model_config = {"extra": "forbid"}
    kind: Literal["clickhouse"] = "clickhouse"
    table: str = Field(pattern=IDENT, description="the ClickHouse table (as a sink writes it)")
    topic: str | None = Field(
        None, pattern=r"^[A-Za-z0-9._-]{1,249}$", description="the clean topic feeding it (real-time subscriptions)"
    )


class FilterSpec(BaseModel):
    model_config = {"extra": "forbid"}
    field: str = Field(pattern=IDENT)
    ops: list[Literal["eq", "in", "range"]] = Field(default_factory=lambda: ["eq"], min_length=1)
    required: bool = False


class RateLimit(BaseModel):
    model_config = {"extra": "forbid"}
    rate: float = Field(10.0, gt=0, le=100_000, description="tokens added per second")
    burst: int = Field(20, ge=1, le=1_000_000, description="bucket size: calls allowed at once")


class ServiceSpec(BaseModel):
    model_config = {"extra": "forbid"}
    name: str = Field(pattern=NAME)
    title: str = Field("", max_length=200)
    description: str = Field("", max_length=4000)
    resource: Resource
    fields: list[str] = Field(min_length=1, max_length=500)
    filters: list[FilterSpec] = Field(default_factory=list, max_length=100)
    sort: list[str] = Field(default_factory=list, max_length=10)
    default_limit: int = Field(50, ge=1, le=10_000)
    max_limit: int = Field(1000, ge=1, le=10_000)
    masking: dict[str, Any] = Field(default_factory=dict)
    dataset: str | None = Field(None, max_length=1000, description="the resource's catalogue URN")
    classification_masking: dict[str, Any] = Field(
        default_factory=dict, description="classification level -> mask spec, for fields `masking` does not name"
    )
    rate_limit: RateLimit = Field(default_factory=RateLimit)
    timeout_s: int = Field(10, ge=1, le=60)
    cache_ttl_s: int = Field(
        0, ge=0, le=3600, description="seconds the answer to the same query, fields and masks is reused (0: never)"
    )

    @field_validator("fields", "sort")
    @classmethod
    def _idents(cls, names: list[str]) -> list[str]:
        import re

        bad = [n for n in names if not re.match(IDENT, n)]
        if bad:
            raise ValueError(f"not plain column names: {bad[:5]}")
        if len(set(names)) != len(names):
            raise ValueError("a column is named twice")
        return names

    @model_validator(mode="after")
    def _consistent(self):
        if self.default_limit > self.max_limit:
            raise ValueError("default_limit is above max_limit")
        exposed = set(self.fields)
        for name in [*self.sort, *self.masking]:
            if name not in exposed:
                raise ValueError(f"{name!r} is not one of the exposed fields")
        seen = set()
        for f in self.filters:
            if f.field in seen:
                raise ValueError(f"filter {f.field!r} declared twice")
            seen.add(f.field)
        if self.classification_masking and not self.dataset:
            raise ValueError("classification_masking needs the resource's catalogue entry (dataset)")
        unknown = [k for k in self.classification_masking if k not in CLASSIFICATIONS]
        if unknown:
            raise ValueError(f"unknown classification levels {unknown[:5]}; known: {', '.join(CLASSIFICATIONS)}")
        for name, spec in [*self.masking.items(), *self.classification_masking.items()]:
            try:
                resolve(spec)
            except (ValueError, TypeError) as exc:
                raise ValueError(f"masking of {name!r}: {exc}") from None
        return self


def service_errors(exc) -> ServiceError:
    return ServiceError(problems_of(exc))
