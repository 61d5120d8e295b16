"""SQLite persistence (via SQLAlchemy) for schemas, subject versions and config.

Global schema ids live in their own table and are never reused or removed, so
the same schema text keeps its id across subjects, deletes and restarts, as
in Confluent. Soft deletes only flag a version; hard deletes remove the row.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

from sqlalchemy import (
    Boolean,
    ForeignKey,
    Integer,
    String,
    Text,
    UniqueConstraint,
    create_engine,
    delete,
    func,
    select,
    update,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, Session, mapped_column

GLOBAL = ""  # config row key for the global level


class _Base(DeclarativeBase):
    pass


class _SchemaRow(_Base):
    __tablename__ = "schemas"
    __table_args__ = (UniqueConstraint("schema_type", "canonical"),)
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    schema_type: Mapped[str] = mapped_column(String(16))
    canonical: Mapped[str] = mapped_column(Text)
    schema_text: Mapped[str] = mapped_column(Text)
    references: Mapped[str] = mapped_column(Text, default="[]")


class _VersionRow(_Base):
    __tablename__ = "subject_versions"
    subject: Mapped[str] = mapped_column(String(512), primary_key=True)
    version: Mapped[int] = mapped_column(Integer, primary_key=True)
    schema_id: Mapped[int] = mapped_column(ForeignKey("schemas.id"), index=True)
    deleted: Mapped[bool] = mapped_column(Boolean, default=False)


class _ConfigRow(_Base):
    __tablename__ = "configs"
    subject: Mapped[str] = mapped_column(String(512), primary_key=True)
    compatibility: Mapped[str] = mapped_column(String(32))


@dataclass(frozen=True)
class StoredSchema:
    id: int
    schema_type: str
    canonical: str
    text: str
    references: list


@dataclass(frozen=True)
class SubjectVersion:
    subject: str
    version: int
    deleted: bool
    schema: StoredSchema


class Store:
    def __init__(self, data_dir: Path) -> None:
        data_dir.mkdir(parents=True, exist_ok=True)
        # check_same_thread off: FastAPI may call us from its threadpool.
        self._engine = create_engine(f"sqlite:///{data_dir / 'registry.db'}", connect_args={"check_same_thread": False})
        _Base.metadata.create_all(self._engine)

    def close(self) -> None:
        self._engine.dispose()

    @staticmethod
    def _to_schema(row: _SchemaRow) -> StoredSchema:
        return StoredSchema(row.id, row.schema_type, row.canonical, row.schema_text, json.loads(row.references))

    # ---- schemas -------------------------------------------------------
    def schema_by_id(self, schema_id: int) -> StoredSchema | None:
        with Session(self._engine) as s:
            row = s.get(_SchemaRow, schema_id)
            return self._to_schema(row) if row else None

    def _schema_id_for(self, s: Session, schema_type: str, canonical: str, text: str, refs: list) -> int:
        row = s.scalars(
            select(_SchemaRow).where(_SchemaRow.schema_type == schema_type, _SchemaRow.canonical == canonical)
        ).first()
        if row is None:
            row = _SchemaRow(
                schema_type=schema_type, canonical=canonical, schema_text=text, references=json.dumps(refs)
            )
            s.add(row)
            s.flush()
        return row.id

    # ---- subject versions ---------------------------------------------
    def versions(self, subject: str, include_deleted: bool = False) -> list[SubjectVersion]:
        """All versions of a subject, oldest first."""
        with Session(self._engine) as s:
            q = (
                select(_VersionRow, _SchemaRow)
                .join(_SchemaRow, _SchemaRow.id == _VersionRow.schema_id)
                .where(_VersionRow.subject == subject)
                .order_by(_VersionRow.version)
            )
            if not include_deleted:
                q = q.where(_VersionRow.deleted.is_(False))
            return [SubjectVersion(v.subject, v.version, v.deleted, self._to_schema(r)) for v, r in s.execute(q)]

    def versions_of_schema(self, schema_id: int, include_deleted: bool = False) -> list[tuple[str, int]]:
        with Session(self._engine) as s:
            q = select(_VersionRow.subject, _VersionRow.version).where(_VersionRow.schema_id == schema_id)
            if not include_deleted:
                q = q.where(_VersionRow.deleted.is_(False))
            return [(a, b) for a, b in s.execute(q.order_by(_VersionRow.subject, _VersionRow.version))]

    def schema_ids_referencing(self, subject: str, version: int) -> list[int]:
        """Ids of schemas (still used by some live or soft-deleted version) referencing subject/version."""
        with Session(self._engine) as s:
            rows = s.scalars(
                select(_SchemaRow)
                .where(_SchemaRow.references != "[]")
                .where(_SchemaRow.id.in_(select(_VersionRow.schema_id)))
            )
            return sorted(
                row.id
                for row in rows
                if any(
                    r.get("subject") == subject and str(r.get("version")) == str(version)
                    for r in json.loads(row.references)
                )
            )

    def add_version(self, subject: str, schema_type: str, canonical: str, text: str, refs: list) -> tuple[int, int]:
        """Append a version (numbered after every version, even soft-deleted ones)."""
        with Session(self._engine) as s, s.begin():
            schema_id = self._schema_id_for(s, schema_type, canonical, text, refs)
            last = s.scalar(select(func.max(_VersionRow.version)).where(_VersionRow.subject == subject))
            version = (last or 0) + 1
            s.add(_VersionRow(subject=subject, version=version, schema_id=schema_id, deleted=False))
            return schema_id, version

    def subjects(self, include_deleted: bool = False, deleted_only: bool = False) -> list[str]:
        with Session(self._engine) as s:
            live = set(s.scalars(select(_VersionRow.subject).where(_VersionRow.deleted.is_(False))))
            if not (include_deleted or deleted_only):
                return sorted(live)
            every = set(s.scalars(select(_VersionRow.subject)))
            return sorted(every - live) if deleted_only else sorted(every)

    def soft_delete(self, subject: str, version: int | None = None) -> None:
        """Flag one version (or the whole subject when version is None) deleted."""
        with Session(self._engine) as s, s.begin():
            q = update(_VersionRow).where(_VersionRow.subject == subject)
            if version is not None:
                q = q.where(_VersionRow.version == version)
            s.execute(q.values(deleted=True))

    def hard_delete(self, subject: str, version: int | None = None) -> None:
        with Session(self._engine) as s, s.begin():
            q = delete(_VersionRow).where(_VersionRow.subject == subject)
            if version is not None:
                q = q.where(_VersionRow.version == version)
            s.execute(q)

    # ---- compatibility config -------------------------------------------
    def get_config(self, subject: str = GLOBAL) -> str | None:
        with Session(self._engine) as s:
            row = s.get(_ConfigRow, subject)
            return row.compatibility if row else None

    def set_config(self, level: str, subject: str = GLOBAL) -> None:
        with Session(self._engine) as s, s.begin():
            s.merge(_ConfigRow(subject=subject, compatibility=level))

    def delete_config(self, subject: str = GLOBAL) -> str | None:
        """Remove a config row, returning the level it held."""
        with Session(self._engine) as s, s.begin():
            row = s.get(_ConfigRow, subject)
            if row is None:
                return None
            level = row.compatibility
            s.delete(row)
            return level
