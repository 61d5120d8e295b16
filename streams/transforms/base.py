"""Transform base class, kind registry and the Pipeline that chains steps over one frame."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any, ClassVar

import polars as pl
from pydantic import BaseModel, ConfigDict

from quality_stream.frame import rows_to_frame


class TransformConfigError(ValueError):
    """A transform definition is invalid; the message names the step and the field."""

    def __init__(self, step: str, field: str | None, problem: str):
        self.step, self.field, self.problem = step, field, problem
        where = f"transform {step!r}" + (f", field {field!r}" if field else "")
        super().__init__(f"{where}: {problem}")


class TransformSpec(BaseModel):
    model_config = ConfigDict(extra="forbid")
    kind: str
    id: str | None = None  # optional name used in error messages and metrics

    # Column flow, read without data when a pipeline is saved (streams.column_check): a step that
    # names a column its input lacks would silently work on nulls (ensure_columns adds them).
    def reads(self) -> list[str]:
        """Columns this step names as its input."""
        return []

    def after(self, columns: list[str]) -> list[str] | None:
        """The columns after this step, given those before it; None when only data can tell."""
        return list(columns)


class Transform:
    kind: ClassVar[str]
    settings: ClassVar[type[TransformSpec]]

    def __init__(self, spec: TransformSpec, env: BuildEnv):
        self.spec = spec
        self.env = env

    def apply_frame(self, df: pl.DataFrame) -> pl.DataFrame:
        raise NotImplementedError

    def apply(self, rows: list[dict]) -> list[dict]:
        if not rows:
            return []
        return self.apply_frame(rows_to_frame(rows)).to_dicts()


class BuildEnv:
    """Things transforms may need that are not in their config: lookup tables, stores, secrets."""

    def __init__(
        self,
        lookups: Mapping[str, Any] | None = None,
        stores: Mapping[str, Any] | None = None,
        secrets: Mapping[str, str] | None = None,
    ):
        from quality_stream.lookup import LookupTable

        self.lookups = {k: v if isinstance(v, LookupTable) else LookupTable(v) for k, v in (lookups or {}).items()}
        self.stores = dict(stores or {})
        self.secrets = dict(secrets or {})


_KINDS: dict[str, type[Transform]] = {}


def transform_kind(*names: str):
    def deco(cls: type[Transform]) -> type[Transform]:
        for n in names or (cls.kind,):
            _KINDS[n] = cls
        return cls

    return deco


def ensure_columns(df: pl.DataFrame, cols: Iterable[str]) -> pl.DataFrame:
    missing = [c for c in dict.fromkeys(cols) if c not in df.columns]
    return df.with_columns([pl.lit(None).alias(c) for c in missing]) if missing else df


class Pipeline:
    """Ordered transforms applied to one DataFrame built once per batch."""

    def __init__(self, steps: list[Transform]):
        self.steps = steps

    def apply_frame(self, df: pl.DataFrame) -> pl.DataFrame:
        for step in self.steps:
            df = step.apply_frame(df)
        return df

    def apply(self, rows: list[dict]) -> list[dict]:
        if not rows:
            return []
        return self.apply_frame(rows_to_frame(rows)).to_dicts()

    def __len__(self) -> int:
        return len(self.steps)

    def __iter__(self):
        return iter(self.steps)


def config_error(field: str, msg: str) -> ValueError:
    """ValueError tagged with the offending field, turned into TransformConfigError by the builder."""
    err = ValueError(msg)
    err.field = field  # type: ignore[attr-defined]
    return err
