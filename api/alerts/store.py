"""Alert rules, the message centre's messages and the throttle ledger, in the control DB.

Rules and messages belong to a tenant (`tenant`; rule names are unique per tenant). Secrets in a
rule's params and e-mail channel (the SMTP password) are stored sealed (connectors.secrets.Vault)
when the store has the state dir's key, and masked (`****`) unless `redact=False`.
"""

from __future__ import annotations

import json
import time
import uuid
from typing import Any

from sqlalchemy import Column, Float, Integer, MetaData, String, Table, Text, UniqueConstraint, select
from sqlalchemy.exc import IntegrityError

from api.jobs.store import iso_time
from connectors.secrets import Vault, mask
from deploy.control import engine_for
from deploy.messages import messages, post_message

metadata = MetaData()

alert_rules = Table(
    "alert_rules",
    metadata,
    Column("id", String(40), primary_key=True),
    Column("tenant", String(100), nullable=True, index=True, doc="owner; NULL = the operator's (all-tenant only)"),
    Column("name", String(200), nullable=False),
    Column("kind", String(40), nullable=False),
    Column("params", Text, nullable=False, default="{}", doc="JSON, secrets sealed"),
    Column("channel", Text, doc="JSON e-mail settings, password sealed; NULL = message centre only"),
    Column("throttle_seconds", Integer, nullable=False, default=600),
    Column("interval_seconds", Integer, nullable=False, default=30),
    Column("enabled", Integer, nullable=False, default=1),
    Column("created_by", String(200)),
    Column("created_at", Float, nullable=False),
    UniqueConstraint("tenant", "name", name="uq_alert_rule_tenant_name"),
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


def _rule(row, redact: bool = True, vault: Vault | None = None) -> dict[str, Any]:
    d = dict(row._mapping)
    params = json.loads(d["params"] or "{}")
    channel = json.loads(d["channel"]) if d["channel"] else None
    if vault is not None:
        params, channel = vault.unseal(params), vault.unseal(channel)
    if redact:  # never hand the SMTP password (or any secret) back
        params, channel = mask(params), mask(channel)
    d["params"], d["channel"] = params, channel
    d["enabled"], d["created_at"] = bool(d["enabled"]), iso_time(d["created_at"])
    return d


class AlertStore:
    def __init__(self, url: str, state_dir=None):
        """Without `state_dir` the store cannot seal or open secrets (counts and messages only)."""
        self.engine = engine_for(url)
        self.vault = Vault(state_dir) if state_dir is not None else None

    def _sealed(self, value: Any) -> str:
        if self.vault is None:
            raise RuntimeError("AlertStore needs the state dir to store rules (secrets are sealed)")
        return json.dumps(self.vault.seal(value))

    def create_rule(self, created_by: str, **values) -> dict:
        rid = uuid.uuid4().hex[:12]
        values["params"] = self._sealed(values.get("params") or {})
        values["channel"] = self._sealed(values["channel"]) if values.get("channel") else None
        values["enabled"] = int(values.get("enabled", True))
        with self.engine.begin() as conn:
            conn.execute(alert_rules.insert().values(id=rid, created_by=created_by, created_at=time.time(), **values))
        return self.get_rule(rid)

    def update_rule(self, rid: str, **values) -> dict | None:
        if "params" in values:
            values["params"] = self._sealed(values["params"] or {})
        if "channel" in values:
            values["channel"] = self._sealed(values["channel"]) if values["channel"] else None
        if "enabled" in values:
            values["enabled"] = int(values["enabled"])
        with self.engine.begin() as conn:
            conn.execute(alert_rules.update().where(alert_rules.c.id == rid).values(**values))
        return self.get_rule(rid)

    def delete_rule(self, rid: str) -> bool:
        with self.engine.begin() as conn:
            return conn.execute(alert_rules.delete().where(alert_rules.c.id == rid)).rowcount > 0

    def get_rule(self, rid: str, redact: bool = True) -> dict | None:
        """By id, else the first rule of that name (names are unique per tenant: see lookup)."""
        found = self.lookup(rid, redact)
        return next((r for r in found if r["id"] == rid), found[0] if found else None)

    def lookup(self, ref: str, redact: bool = True) -> list[dict]:
        """Every rule whose id or name is `ref`."""
        with self.engine.connect() as conn:
            rows = conn.execute(
                select(alert_rules)
                .where((alert_rules.c.id == ref) | (alert_rules.c.name == ref))
                .order_by(alert_rules.c.id)
            ).all()
        return [_rule(r, redact, self.vault) for r in rows]

    def rules(self, redact: bool = True, tenants: set[str] | None = None) -> list[dict]:
        """Every rule, or those of `tenants` (None = all)."""
        q = select(alert_rules).order_by(alert_rules.c.name, alert_rules.c.tenant)
        if tenants is not None:
            q = q.where(alert_rules.c.tenant.in_(sorted(tenants)))
        with self.engine.connect() as conn:
            return [_rule(r, redact, self.vault) for r in conn.execute(q).all()]

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
        self,
        category: str,
        level: str,
        subject: str,
        body: str,
        rule_id: str | None = None,
        delivery: str = "none",
        tenant: str | None = None,
    ) -> int:
        """`tenant`: the tenant of the message's subject (its rule, connector or pipeline)."""
        return post_message(self.engine, category, level, subject, body, rule_id, delivery, tenant)

    def set_delivery(self, mid: int, delivery: str) -> None:
        with self.engine.begin() as conn:
            conn.execute(messages.update().where(messages.c.id == mid).values(delivery=delivery[:500]))

    def mark_read(self, mid: int) -> bool:
        with self.engine.begin() as conn:
            return conn.execute(messages.update().where(messages.c.id == mid).values(read=1)).rowcount > 0

    def message_tenant(self, mid: int) -> tuple[bool, str | None]:
        """(exists, tenant) of a message."""
        with self.engine.connect() as conn:
            row = conn.execute(select(messages.c.tenant).where(messages.c.id == mid)).first()
        return (row is not None, row.tenant if row else None)

    def messages(
        self,
        category: str | None = None,
        rule_id: str | None = None,
        since: float | None = None,
        unread: bool = False,
        limit: int = 100,
        tenants: set[str] | None = None,
    ) -> list[dict]:
        """Newest first; `tenants` limits them to those tenants' messages (None = all)."""
        q = select(messages).order_by(messages.c.id.desc()).limit(limit)
        if tenants is not None:
            q = q.where(messages.c.tenant.in_(sorted(tenants)))
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
