"""After a review is approved: its published code sets land in ClickHouse (sinks/clickhouse/codesets.py)
and in their compacted topic, which running pipelines follow (streams/lookup_publish.py: the codes
valid today, tombstones for the others of earlier versions). The approval stands whatever ClickHouse
or the broker answers; the answer says per code set where it went or why not.

    code_sets_to_clickhouse(settings, scope, review) -> [{"code", "version", "table", "rows", "topic"} | {..., "error"}]
"""

from __future__ import annotations

import datetime as dt
import logging
from typing import Any

from api.standards import standards_store
from quality_stream.governance.generate import code_set_topic
from quality_stream.governance.model import CodeSetSpec
from sinks.clickhouse import client_from_url
from sinks.clickhouse.codesets import code_set_table, publish_code_set
from streams.lookup_publish import publish_lookup

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
            done = {"code": item["code"], "version": code_set["version"], "table": table, "rows": rows}
            try:
                done["topic"] = _to_topic(settings, scope, item["code"], code_set)
            except Exception as exc:  # the broker down: named, the approval stands
                log.warning("code set %s not written to its topic: %s", item["code"], exc)
                done["error"] = str(exc)[:300]
            out.append(done)
    finally:
        client.disconnect()
    return out


def _to_topic(settings, scope: str, code: str, code_set: dict[str, Any]) -> str:
    spec = CodeSetSpec.model_validate({k: v for k, v in code_set.items() if k in CodeSetSpec.model_fields})
    valid = set(spec.codes(dt.date.today()))
    entries = {i.code: {"label": i.label, "parent": i.parent} for i in spec.items if i.code in valid}
    earlier: set[str] = set()
    for version in range(1, code_set["version"]):
        earlier |= {i["code"] for i in standards_store(settings).get(scope, "code_set", code, version)["items"]}
    topic = code_set_topic(scope, code)
    publish_lookup(settings.kafka_bootstrap, topic, entries, sorted((earlier | {i.code for i in spec.items}) - valid))
    return topic
