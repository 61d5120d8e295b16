"""Published code sets as ClickHouse tables, so a dashboard shows 济南市 instead of 370100 with one join.

    table = code_set_table(scope, code)          # std_codes_<code> (operator's) / std_codes_<tenant>_<code>
    rows = publish_code_set(client, table, items, version)

One ReplacingMergeTree table per code set: `code`, `label`, `parent`, `valid_from`, `valid_to`,
`version` (the code set's version), `_deleted` (1 for a code the new version dropped). Read it
`FINAL WHERE _deleted = 0`:

    SELECT p.id, p.division_code, d.label AS division
    FROM population AS p FINAL
    LEFT JOIN (SELECT code, label FROM std_codes_gb2260 FINAL WHERE _deleted = 0) AS d
      ON p.division_code = d.code
"""

from __future__ import annotations

import datetime as dt
import re
from typing import Any

_UNSAFE = re.compile(r"[^A-Za-z0-9_]")


def code_set_table(scope: str, code: str) -> str:
    parts = ["std_codes", scope, code] if scope else ["std_codes", code]
    return "_".join(_UNSAFE.sub("_", p) for p in parts)[:200]


def _date(value: Any) -> dt.date | None:
    if value in (None, ""):
        return None
    return value if isinstance(value, dt.date) else dt.date.fromisoformat(str(value))


def publish_code_set(client, table: str, items: list[dict[str, Any]], version: int) -> int:
    """Write `items` as `version`; codes of earlier versions that are gone are marked `_deleted`."""
    client.execute(
        f"CREATE TABLE IF NOT EXISTS `{table}` (code String, label String, parent Nullable(String), "
        "valid_from Nullable(Date), valid_to Nullable(Date), version UInt32, _deleted UInt8) "
        "ENGINE = ReplacingMergeTree(version) ORDER BY code"
    )
    present = {r[0] for r in client.execute(f"SELECT code FROM `{table}` FINAL WHERE _deleted = 0")}
    codes = {i["code"] for i in items}
    rows = [
        (i["code"], i["label"], i.get("parent"), _date(i.get("valid_from")), _date(i.get("valid_to")), version, 0)
        for i in items
    ]
    rows += [(c, "", None, None, None, version, 1) for c in sorted(present - codes)]
    client.execute(f"INSERT INTO `{table}` (code, label, parent, valid_from, valid_to, version, _deleted) VALUES", rows)
    return len(items)
