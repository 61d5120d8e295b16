"""Every rule kind: the built-in families, registered by importing their modules here (the base
module only holds the registry and the decorator, so no family imports back into it), and any
kind registered since (`rule_kind`, `quality_stream.rules.custom.register_rule`)."""

from __future__ import annotations

from quality_stream.rules import basic, codeset, consistency, custom, freshness, ranges, uniqueness  # noqa: F401
from quality_stream.rules.base import _KINDS, Rule
from quality_stream.standards import rules as _standards  # noqa: F401


def kinds() -> dict[str, type[Rule]]:
    return dict(_KINDS)


def rule_kinds() -> dict[str, dict]:
    """kind -> JSON Schema of its settings, for editors and the config API."""
    return {k: cls.settings.model_json_schema() for k, cls in sorted(_KINDS.items())}
