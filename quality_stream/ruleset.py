"""RuleSet: compile rule definitions (data) and evaluate them over micro-batches."""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl

from quality_stream.errors import RuleConfigError, build_kind
from quality_stream.frame import rows_to_frame
from quality_stream.lookup import LookupTable
from quality_stream.model import BatchVerdict, Violation
from quality_stream.rules.base import EvalContext, Rule
from quality_stream.rules.registry import kinds
from quality_stream.state import TTLStore


def compile_rule(cfg: Any, index: int = 0) -> Rule:
    """Validate one rule definition against its kind's pydantic model and build the rule."""
    if not isinstance(cfg, Mapping):
        raise RuleConfigError(f"#{index}", None, f"rule definition must be a mapping, got {type(cfg).__name__}")
    rid = cfg.get("id") or f"#{index}"
    return build_kind(kinds(), cfg, rid, RuleConfigError, lambda cls, spec: cls(spec))


class RuleSet:
    """An ordered collection of compiled rules plus their shared state.

    lookups: name -> LookupTable, filled by the runner (e.g. from a compacted topic).
    stores:  name -> state store for uniqueness windows ("default" is an in-memory TTL store).
    """

    def __init__(
        self, rules: list[Rule], *, lookups: Mapping[str, Any] | None = None, stores: Mapping[str, Any] | None = None
    ):
        ids = [r.id for r in rules]
        dup = {i for i in ids if ids.count(i) > 1}
        if dup:
            raise RuleConfigError(sorted(dup)[0], "id", "duplicate rule id")
        self.rules = rules
        self.lookups: dict[str, LookupTable] = {}
        for name, values in (lookups or {}).items():
            self.set_lookup(name, values)
        self.stores: dict[str, Any] = {"default": TTLStore()}
        self.stores.update(stores or {})
        self._counters = {r.id: {"evaluated": 0, "failed": 0} for r in rules}
        self._columns = list(dict.fromkeys(c for r in rules for c in r.columns()))

    # -- construction -------------------------------------------------------------------
    @classmethod
    def from_config(cls, configs: Iterable[Mapping[str, Any]] | Mapping[str, Any], **kw) -> RuleSet:
        if isinstance(configs, Mapping):  # allow {"rules": [...]} documents
            configs = configs.get("rules", [])
        return cls([compile_rule(c, i) for i, c in enumerate(configs)], **kw)

    @classmethod
    def from_yaml(cls, text_or_path: str | Path, **kw) -> RuleSet:
        import yaml

        text = _read(text_or_path)
        return cls.from_config(yaml.safe_load(text) or [], **kw)

    @classmethod
    def from_json(cls, text_or_path: str | Path, **kw) -> RuleSet:
        return cls.from_config(json.loads(_read(text_or_path)), **kw)

    # -- runner hooks -------------------------------------------------------------------
    def set_lookup(self, name: str, values: Any) -> LookupTable:
        table = values if isinstance(values, LookupTable) else LookupTable(values)
        self.lookups[name] = table
        return table

    def lookup(self, name: str) -> LookupTable:
        return self.lookups.setdefault(name, LookupTable())

    @property
    def counters(self) -> dict[str, dict[str, int]]:
        return {k: dict(v) for k, v in self._counters.items()}

    def reset_counters(self) -> None:
        for c in self._counters.values():
            c["evaluated"] = c["failed"] = 0

    # -- evaluation ---------------------------------------------------------------------
    def evaluate(self, rows: list[dict], *, now: datetime | None = None) -> BatchVerdict:
        return self.evaluate_frame(rows_to_frame(rows, self._columns), now=now)

    def evaluate_frame(self, df: pl.DataFrame, *, now: datetime | None = None) -> BatchVerdict:
        missing = [c for c in self._columns if c not in df.columns]
        if missing:
            df = df.with_columns([pl.lit(None).alias(c) for c in missing])
        n = df.height
        if n == 0:
            return BatchVerdict(row_count=0, valid_rows=[])
        ctx = EvalContext(now=now or datetime.now(UTC), lookups=self.lookups, stores=self.stores)

        plan: list[tuple[Rule, str | None, str]] = []
        exprs: list[pl.Expr] = []
        expr_keys: list[str] = []
        series: list[pl.Series] = []
        for rule in self.rules:
            for field, mask in rule.masks(df, ctx):
                key = f"__m{len(plan)}"
                plan.append((rule, field, key))
                if isinstance(mask, pl.Series):
                    series.append(mask.alias(key))
                else:
                    exprs.append(mask.alias(key))
                    expr_keys.append(key)
        # with_columns (not select) so literal masks broadcast to the batch height.
        res = df.with_columns(exprs).select(expr_keys)
        if series:
            res = res.with_columns(series) if res.width else pl.DataFrame(series)
        if not plan:
            return BatchVerdict(row_count=n, valid_rows=list(range(n)))
        res = res.with_columns(pl.col(k).fill_null(False).cast(pl.Boolean) for _, _, k in plan)

        # The masks as numpy arrays, each read once (polars' arg_true / select per mask ran a query each).
        failing = {key: res.get_column(key).to_numpy() for _, _, key in plan}
        by_rule: dict[str, list[str]] = {}
        for rule, _, key in plan:
            by_rule.setdefault(rule.id, []).append(key)
        for rule in self.rules:
            c = self._counters[rule.id]
            c["evaluated"] += n
            keys = by_rule.get(rule.id)
            if keys:
                c["failed"] += int(np.logical_or.reduce([failing[k] for k in keys]).sum())

        rejected: dict[int, list[Violation]] = {}
        warnings: dict[int, list[Violation]] = {}
        reject_keys: list[str] = []
        for rule, field, key in plan:
            idx = np.flatnonzero(failing[key]).tolist()
            if not idx:
                continue
            # One shared (immutable) Violation per rule/field keeps failing batches cheap.
            v = Violation(rule.id, field, rule.message_for(field), rule.spec.severity, rule.dimension)
            target = rejected if rule.spec.severity == "reject" else warnings
            if target is rejected:
                reject_keys.append(key)
            for i in idx:
                target.setdefault(i, []).append(v)
        if reject_keys:
            valid = np.flatnonzero(~np.logical_or.reduce([failing[k] for k in reject_keys])).tolist()
        else:
            valid = list(range(n))
        return BatchVerdict(
            row_count=n,
            valid_rows=valid,
            rejected=dict(sorted(rejected.items())),
            warnings=dict(sorted(warnings.items())),
        )

    def __len__(self) -> int:
        return len(self.rules)

    def __iter__(self):
        return iter(self.rules)


def _read(text_or_path: str | Path) -> str:
    if isinstance(text_or_path, Path):
        return text_or_path.read_text(encoding="utf-8")
    p = Path(text_or_path)
    if "\n" not in text_or_path and len(text_or_path) < 4096 and p.suffix in {".yaml", ".yml", ".json"} and p.exists():
        return p.read_text(encoding="utf-8")
    return text_or_path
