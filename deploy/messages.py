"""The message centre's table and the one way to post to it. Low in the house on purpose: sources,
sinks and workers post (an import over its bad-row ratio, a task that keeps failing) without
importing the API; `api/alerts` reads, delivers and marks them.

    from deploy.messages import post_message
    post_message(settings.resolved_control_db_url, "import", "error", subject, body, tenant="t1")
"""

from __future__ import annotations

import time

from sqlalchemy import Column, Float, Integer, MetaData, String, Table, Text
from sqlalchemy.engine import Engine

from deploy.control import engine_for

metadata = MetaData()

messages = Table(
    "messages",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("tenant", String(100), nullable=True, index=True, doc="tenant of the subject (rule, connector, pipeline)"),
    Column("created_at", Float, nullable=False, index=True),
    Column("category", String(40), nullable=False),
    Column("level", String(20), nullable=False),
    Column("rule_id", String(40)),
    Column("subject", String(500), nullable=False),
    Column("body", Text),
    Column("delivery", String(500), doc="e-mail outcome: sent | failed: ... | none"),
    Column("read", Integer, nullable=False, default=0),
)


def post_message(
    target: str | Engine,
    category: str,
    level: str,
    subject: str,
    body: str,
    rule_id: str | None = None,
    delivery: str = "none",
    tenant: str | None = None,
) -> int:
    """`target`: the control DB's URL or engine; `tenant`: the tenant of the message's subject."""
    engine = engine_for(target) if isinstance(target, str) else target
    with engine.begin() as conn:
        return conn.execute(
            messages.insert().values(
                tenant=tenant,
                created_at=time.time(),
                category=category,
                level=level,
                rule_id=rule_id,
                subject=subject[:500],
                body=body,
                delivery=delivery[:500],
                read=0,
            )
        ).inserted_primary_key[0]
