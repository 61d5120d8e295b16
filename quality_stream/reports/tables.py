"""Control-DB tables of quality reports and profiles (migration 0010_quality_reports), kept per
`scope` (the tenant; "" = the operator's).

- quality_reports: every rendered report (its figures as JSON, the HTML and the PDF): the history.
- quality_report_subscriptions: who gets a report by e-mail (per kind/target/period), and the SMTP
  channel to send it through (the alert e-mail channel's shape).
- quality_profiles: column profiles of a catalogue dataset version (its statistics) and the rules
  they suggest.
"""

from __future__ import annotations

from sqlalchemy import Column, Float, Index, Integer, LargeBinary, MetaData, String, Table, Text

metadata = MetaData()

quality_reports = Table(
    "quality_reports",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("scope", String(100), nullable=False),
    Column("kind", String(20), nullable=False),  # all | system | department
    Column("target", String(200), nullable=False),
    Column("period", String(10), nullable=False),  # daily | weekly | monthly
    Column("period_start", Float, nullable=False),
    Column("period_end", Float, nullable=False),
    Column("created_at", Float, nullable=False),
    Column("created_by", String(200), nullable=False),
    Column("summary", Text, nullable=False),
    Column("html", Text, nullable=False),
    Column("pdf", LargeBinary, nullable=False),
    Index("ix_quality_reports_scope", "scope", "created_at"),
)

quality_report_subscriptions = Table(
    "quality_report_subscriptions",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("scope", String(100), nullable=False),
    Column("kind", String(20), nullable=False),
    Column("target", String(200), nullable=False),
    Column("period", String(10), nullable=False),
    Column("channel", Text, nullable=False),  # JSON: smtp_host, smtp_port, from, to, ...
    Column("created_by", String(200), nullable=False),
    Column("created_at", Float, nullable=False),
    Index("ix_quality_report_subscriptions_scope", "scope", "kind", "target", "period"),
)

quality_profiles = Table(
    "quality_profiles",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("scope", String(100), nullable=False),
    Column("dataset_urn", String(1000), nullable=False),
    Column("dataset_version", Integer, nullable=False),
    Column("table_name", String(500), nullable=False),
    Column("profile", Text, nullable=False),  # JSON: rows, columns -> statistics
    Column("suggestions", Text, nullable=False),  # JSON: suggested rules
    Column("created_at", Float, nullable=False),
    Column("created_by", String(200), nullable=False),
    Index("ix_quality_profiles_dataset", "scope", "dataset_urn"),
)
