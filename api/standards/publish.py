"""After a review is approved: its published code sets land in ClickHouse (sinks/clickhouse/codesets.py).
The approval stands whatever ClickHouse answers; the answer says per code set where it went or why not.

    code_sets_to_clickhouse(settings, scope, review) -> [{"code", "version", "table", "rows"} | {"code", "error"}]
"""

from __future__ import annotations

import logging
from typing import Any

from api.standards import standards_store
from sinks.clickhouse import client_from_url
from sinks.clickhouse.codesets import code_set_table, publish_code_set

log = logging.getLogger(__name__)


def code_sets_to_clickhouse(settings, scope: str, review: dict[str, Any]) -> list[dict[str, Any]]:
    items = [i for i in review["items"] if i["kind"] == "code_set"]
    if not items:
        return []
    out = []
    client = client_from_url(settings.clickhouse_url)
    try:
        for item in items:
            code_set = standards_store(settings).get(scope, "code_set", item["code"], item["version"])
            table = code_set_table(scope, item["code"])
            try:
                rows = publish_code_set(client, table, code_set["items"], code_set["version"])
            except Exception as exc:  # ClickHouse down or refusing: named, the approval stands
                log.warning("code set %s not written to ClickHouse: %s", item["code"], exc)
                out.append({"code": item["code"], "error": str(exc)[:300]})
                continue
            out.append({"code": item["code"], "version": code_set["version"], "table": table, "rows": rows})
    finally:
        client.disconnect()
    return out
