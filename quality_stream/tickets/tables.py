"""The quality tickets' tables in the control DB (migration 0009_quality_tickets), kept per `scope`
(the owning tenant, "" = none), as the catalogue and the standards are.

`quality_tickets`: one row per ticket, the latest state; `active` is "1" while the ticket is not
closed and NULL once closed, so the unique (scope, dataset, rule, active) lets only one live ticket
exist per dataset and rule even when several API processes run the monitor.
`quality_ticket_events`: the history (opened, every transition, comments, counts updates,
escalation, notifications), never changed.
`quality_ticket_thresholds`: when the monitor opens a ticket (per scope, optionally per pipeline/rule).
`quality_ticket_samples`: the runners' cumulative counters as the monitor saw them (the window).
"""

from __future__ import annotations

from sqlalchemy import BigInteger, Column, Float, Index, Integer, MetaData, String, Table, Text, UniqueConstraint

metadata = MetaData()
URN = 1000

quality_tickets = Table(
    "quality_tickets",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("scope", String(100), nullable=False),
    Column("pipeline", String(200), nullable=False),
    Column("dataset_urn", String(URN), nullable=False),
    Column("rule", String(300), nullable=False),
    Column("dimension", String(20), nullable=False),
    Column("state", String(20), nullable=False),
    Column("active", String(1), nullable=True),  # "1" until closed (see the module docstring)
    Column("origin", String(10), nullable=False),  # auto | manual
    Column("assignee", String(200), nullable=True),
    Column("department", String(200), nullable=True),
    Column("resolution", String(40), nullable=True),
    Column("resolution_reason", Text, nullable=True),
    Column("failed", BigInteger, nullable=False),  # failures counted into this ticket
    Column("evaluated", BigInteger, nullable=False),  # records checked in the same windows
    Column("samples", Text, nullable=False),  # JSON: quarantined records (positions, violations, event)
    Column("base_read", BigInteger, nullable=True),  # the runner's counters at resolution (verify/reopen)
    Column("base_failed", BigInteger, nullable=True),
    Column("opened_by", String(200), nullable=False),
    Column("opened_at", Float, nullable=False),
    Column("due_at", Float, nullable=False),
    Column("responded_at", Float, nullable=True),
    Column("resolved_at", Float, nullable=True),
    Column("verified_at", Float, nullable=True),
    Column("closed_at", Float, nullable=True),
    Column("escalated_at", Float, nullable=True),
    Column("updated_at", Float, nullable=False),
    UniqueConstraint("scope", "dataset_urn", "rule", "active", name="uq_quality_tickets_live"),
    Index("ix_quality_tickets_state", "scope", "state"),
    Index("ix_quality_tickets_assignee", "scope", "assignee"),
)

quality_ticket_events = Table(
    "quality_ticket_events",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("ticket_id", Integer, nullable=False),
    Column("at", Float, nullable=False),
    Column("actor", String(200), nullable=False),
    Column("kind", String(20), nullable=False),  # opened | transition | comment | counts | escalated | notified
    Column("from_state", String(20), nullable=True),
    Column("to_state", String(20), nullable=True),
    Column("body", Text, nullable=True),  # JSON details or the comment text
    Index("ix_quality_ticket_events_ticket", "ticket_id"),
)

quality_ticket_thresholds = Table(
    "quality_ticket_thresholds",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("scope", String(100), nullable=False),
    Column("pipeline", String(200), nullable=False),  # "" = every pipeline of the scope
    Column("rule", String(300), nullable=False),  # "" = every rule
    Column("body", Text, nullable=False),  # JSON Threshold
    Column("updated_by", String(200), nullable=False),
    Column("updated_at", Float, nullable=False),
    UniqueConstraint("scope", "pipeline", "rule", name="uq_quality_ticket_thresholds"),
)

quality_ticket_samples = Table(
    "quality_ticket_samples",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("pipeline", String(200), nullable=False),
    Column("taken_at", Float, nullable=False),
    Column("counts", Text, nullable=False),  # JSON {"read": n, "quarantined.<rule>": m, ...}
    Index("ix_quality_ticket_samples_pipeline", "pipeline", "taken_at"),
)
