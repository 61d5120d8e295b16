"""Published data elements become quality rules for the fields mapped to them.

    rules = element_rules(element, fields, code_set=None)   # [rule dicts], compiled once to check them
    merged = merge_rules(document_rules, generated)         # hand-written rules kept, generated replaced

An element gives, for the fields (a pipeline's column names): `type` (non-string types), `length`
(min_length / length), `regex` (format, whole value), code set membership (a `reference` rule
against the table `std_codes.<code>` that a lean runner feeds from the compacted topic
`_huiliu.codes.<tenant>.<code>` — new code set versions reach it without a pipeline change — or,
for other runners, `in_set` with the published codes valid today) and `range` (min_value / max_value). Generated rules' ids start with
`std.<element code>.` — the prefix is reserved: a hand-written rule must not use it, since each
regeneration replaces every rule carrying it. Messages are in Chinese and English.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from quality_stream.governance.model import CodeSetSpec

PREFIX = "std."


def is_generated(rule: Any) -> bool:
    return isinstance(rule, dict) and str(rule.get("id", "")).startswith(PREFIX)


def _rule(element: dict[str, Any], check: str, zh: str, fields: list[str], **spec) -> dict[str, Any]:
    code, name = element["code"], element.get("name_zh") or element["code"]
    return {
        "id": f"{PREFIX}{code}.{check}",
        "fields": sorted(fields),
        "dimension": "validity",
        "severity": "reject",
        "message": f"不符合数据元“{name}”（{code}）的{zh}要求 / breaks data element {code}: {check}",
        "description": f"generated from data element {code} version {element['version']} / 由数据元生成",
        **spec,
    }


def element_rules(
    element: dict[str, Any],
    fields: list[str],
    code_set: dict[str, Any] | None = None,
    today: dt.date | None = None,
    lookup_table: str | None = None,
) -> list[dict[str, Any]]:
    """`lookup_table`: check code set membership with a `reference` rule against that table (fed
    from the code set's compacted topic, so a new code set version needs no new pipeline version)
    instead of the codes written into the rule."""
    if not fields:
        return []
    out = []
    if element.get("data_type", "string") != "string":
        out.append(_rule(element, "type", "数据类型", fields, kind="type", type=element["data_type"]))
    if element.get("length") is not None or element.get("min_length") is not None:
        out.append(
            _rule(
                element,
                "length",
                "长度",
                fields,
                kind="length",
                min=element.get("min_length"),
                max=element.get("length"),
            )
        )
    if element.get("format"):
        out.append(_rule(element, "format", "格式", fields, kind="regex", pattern=element["format"], fullmatch=True))
    if code_set is not None and lookup_table:
        out.append(
            _rule(element, "code_set", "代码集", fields, kind="reference", table=lookup_table, pass_when_empty=False)
        )
    elif code_set is not None:
        spec = CodeSetSpec.model_validate({k: v for k, v in code_set.items() if k in CodeSetSpec.model_fields})
        values = sorted(spec.codes(today or dt.date.today()))
        out.append(_rule(element, "code_set", "代码集", fields, kind="in_set", values=values, as_text=True))
    if element.get("min_value") is not None or element.get("max_value") is not None:
        out.append(
            _rule(
                element,
                "range",
                "取值范围",
                fields,
                kind="range",
                min=element.get("min_value"),
                max=element.get("max_value"),
            )
        )
    _check(out, lookup_table)
    return out


def _check(rules: list[dict[str, Any]], lookup_table: str | None) -> None:
    """Compile them as a runner would: a rule the engine refuses is a bug here, not at deploy time."""
    from quality_stream import RuleSet
    from quality_stream.lookup import LookupTable

    RuleSet.from_config(rules, lookups={lookup_table: LookupTable()} if lookup_table else {})


LOOKUP_PREFIX = "std_codes."


def code_set_lookup(code: str) -> str:
    """The reference table name a pipeline gives a code set (its runner.lookups key)."""
    return f"{LOOKUP_PREFIX}{code}"


def code_set_topic(scope: str, code: str) -> str:
    """The compacted topic a published code set is written to (internal: `_huiliu.*`)."""
    return f"_huiliu.codes.{scope or '_'}.{code}"


def merge_lookups(existing: dict[str, str], generated: dict[str, str]) -> dict[str, str]:
    kept = {k: v for k, v in existing.items() if not k.startswith(LOOKUP_PREFIX)}
    return {**kept, **dict(sorted(generated.items()))}


def merge_rules(existing: list[dict[str, Any]], generated: list[dict[str, Any]]) -> list[dict[str, Any]]:
    kept = [r for r in existing if not is_generated(r)]
    return kept + sorted(generated, key=lambda r: r["id"])
