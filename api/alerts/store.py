"""Alert rules, the message centre's messages and the throttle ledger, in the control DB."""

from __future__ import annotations

import json
import time
import uuid
from typing import Any

from sqlalchemy import Column, Float, Integer, MetaData, String, Table, Text, select
from sqlalchemy.exc import IntegrityError

from api.jobs.store import iso_time
from deploy.control import engine_for

metadata = MetaData()

alert_rules = Table(
    "alert_rules",
    metadata,
    Column("id", String(40), primary_key=True),
    Column("name", String(200), nullable=False, unique=True),
    Column("kind", String(40), nullable=False),
    Column("params", Text, nullable=False, default="{}"),
    Column("channel", Text, doc="JSON e-mail settings; NULL = message centre only"),
    Column("throttle_seconds", Integer, nullable=False, default=600),
    Column("interval_seconds", Integer, nullable=False, default=30),
    Column("enabled", Integer, nullable=False, default=1),
    Column("created_by", String(200)),
    Column("created_at", Float, nullable=False),
)

messages = Table(
    "messages",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("created_at", Float, nullable=False, index=True),
    Column("category", String(40), nullable=False),
    Column("level", String(20), nullable=False),
    Column("rule_id", String(40)),
    Column("subject", String(500), nullable=False),
    Column("body", Text),
    Column("delivery", String(500), doc="e-mail outcome: sent | failed: ... | none"),
    Column("read", Integer, nullable=False, default=0),
)

# One row per (rule, subject): who sent last and when; claimed with a conditional UPDATE so that
# two API processes evaluating the same rule send one e-mail, not two.
alert_throttle = Table(
    "alert_throttle",
    metadata,
    Column("rule_id", String(40), primary_key=True),
    Column("subject", String(500), primary_key=True),
    Column("last_sent_at", Float, nullable=False),
    Column("suppressed", Integer, nullable=False, default=0),
)

_SECRET_KEYS = {"password"}


def _rule(row, redact: bool = True) -> dict[str, Any]:
    d = dict(row._mapping)
    d["params"] = json.loads(d["params"] or "{}")
    channel = json.loads(d["channel"]) if d["channel"] else None
    if channel and redact:  # never hand the SMTP password back
        channel = {k: ("***" if k in _SECRET_KEYS else v) for k, v in channel.items()}
    d["channel"], d["enabled"], d["created_at"] = channel, bool(d["enabled"]), iso_time(d["created_at"])
    return d


class AlertStore:
    def __init__(self, url: str):
        self.engine = engine_for(url)
        metadata.create_all(self.engine)

    def create_rule(self, created_by: str, **values) -> dict:
        rid = uuid.uuid4().hex[:12]
        values["params"] = json.dumps(values.get("params") or {})
        values["channel"] = json.dumps(values["channel"]) if values.get("channel") else None
        values["enabled"] = int(values.get("enabled", True))
        with self.engine.begin() as conn:
            conn.execute(alert_rules.insert().values(id=rid, created_by=created_by, created_at=time.time(), **values))
        return self.get_rule(rid)

    def update_rule(self, rid: str, **values) -> dict | None:
        if "params" in values:
            values["params"] = json.dumps(values["params"] or {})
        if "channel" in values:
            values["channel"] = json.dumps(values["channel"]) if values["channel"] else None
        if "enabled" in values:
            values["enabled"] = int(values["enabled"])
        with self.engine.begin() as conn:
            conn.execute(alert_rules.update().where(alert_rules.c.id == rid).values(**values))
        return self.get_rule(rid)

    def delete_rule(self, rid: str) -> bool:
        with self.engine.begin() as conn:
            return conn.execute(alert_rules.delete().where(alert_rules.c.id == rid)).rowcount > 0

    def get_rule(self, rid: str, redact: bool = True) -> dict | None:
        with self.engine.connect() as conn:
            row = conn.execute(
                select(alert_rules).where((alert_rules.c.id == rid) | (alert_rules.c.name == rid))
            ).first()
        return _rule(row, redact) if row else None

    def rules(self, redact: bool = True) -> list[dict]:
        with self.engine.connect() as conn:
            return [_rule(r, redact) for r in conn.execute(select(alert_rules).order_by(alert_rules.c.name)).all()]

    def claim(self, rule_id: str, subject: str, window: float) -> int | None:
        """Claim the right to send (rule, subject) now; None when throttled, else repeats suppressed since."""
        now = time.time()
        key = (alert_throttle.c.rule_id == rule_id) & (alert_throttle.c.subject == subject)
        with self.engine.begin() as conn:
            row = conn.execute(select(alert_throttle.c.suppressed).where(key)).first()
            if row is None:
                try:
                    conn.execute(
                        alert_throttle.insert().values(rule_id=rule_id, subject=subject, last_sent_at=now, suppressed=0)
                    )
                    return 0
                except IntegrityError:
                    return None
            won = conn.execute(
                alert_throttle.update()
                .where(key & (alert_throttle.c.last_sent_at <= now - window))
                .values(last_sent_at=now, suppressed=0)
            ).rowcount
            if won:
                return int(row[0])
            conn.execute(alert_throttle.update().where(key).values(suppressed=alert_throttle.c.suppressed + 1))
            return None

    def add_message(
        self, category: str, level: str, subject: str, body: str, rule_id: str | None = None, delivery: str = "none"
    ) -> int:
        with self.engine.begin() as conn:
            return conn.execute(
                messages.insert().values(
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

    def set_delivery(self, mid: int, delivery: str) -> None:
        with self.engine.begin() as conn:
            conn.execute(messages.update().where(messages.c.id == mid).values(delivery=delivery[:500]))

    def mark_read(self, mid: int) -> bool:
        with self.engine.begin() as conn:
            return conn.execute(messages.update().where(messages.c.id == mid).values(read=1)).rowcount > 0

    def messages(
        self,
        category: str | None = None,
        rule_id: str | None = None,
        since: float | None = None,
        unread: bool = False,
        limit: int = 100,
    ) -> list[dict]:
        q = select(messages).order_by(messages.c.id.desc()).limit(limit)
        if category:
            q = q.where(messages.c.category == category)
        if rule_id:
            q = q.where(messages.c.rule_id == rule_id)
        if since is not None:
            q = q.where(messages.c.created_at >= since)
        if unread:
            q = q.where(messages.c.read == 0)
        with self.engine.connect() as conn:
            rows = conn.execute(q).all()
        return [{**dict(r._mapping), "created_at": iso_time(r.created_at), "read": bool(r.read)} for r in rows]
