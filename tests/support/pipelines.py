"""A pipeline document as a developer writes one: timestamp source, trim, two rules, ClickHouse."""

from __future__ import annotations


def document(name: str, **extra) -> dict:
    return {
        "name": name,
        "description": "population register",
        "source": {
            "kind": "relational.timestamp",
            "config": {
                "url": "postgresql+psycopg://etl:Sup3rSecret@db.example:5432/civil",
                "system": "civil",
                "table": "population",
                "timestamp_column": "updated_at",
            },
        },
        "transforms": [{"kind": "trim", "fields": ["name", "phone"]}],
        "rules": [
            {"id": "name_required", "kind": "required", "fields": ["name"], "severity": "reject"},
            {"id": "phone_format", "kind": "regex", "fields": ["phone"], "pattern": "^1\\d{10}$"},
        ],
        "sink": {"kind": "clickhouse", "config": {"table": "population"}},
        **extra,
    }
