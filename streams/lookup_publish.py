"""Writing a reference table to a compacted topic, which running pipelines follow (streams.lookups):
a change reaches their `reference` rules and lookup transforms without a restart.

    publish_lookup(bootstrap, topic, entries, removed=())   # key -> JSON value; tombstones for `removed`

The topic is created compacted when missing. Keys are UTF-8 text, values JSON (the format
`streams.lookups.CompactedTopicLookup` reads by default); a removed key gets a tombstone (None).
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from typing import Any

from deploy.kafka import AckedProducer, ensure_topics


def publish_lookup(bootstrap: str, topic: str, entries: dict[str, Any], removed: Iterable[str] = ()) -> int:
    ensure_topics(bootstrap, [topic], config={"cleanup.policy": "compact"})
    producer = AckedProducer(bootstrap)
    for key, value in entries.items():
        producer.produce(topic, json.dumps(value, ensure_ascii=False, default=str).encode(), key.encode())
    for key in removed:
        producer.produce(topic, None, key.encode())
    producer.flush_acked()
    return len(entries)
