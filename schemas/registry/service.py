"""Registry semantics (Confluent's rules) on top of the store, independent of HTTP.

Callers run on one asyncio event loop and these methods never await, so each
call is atomic: the "check compatibility, then append version" sequence in
register() cannot interleave with another registration.
"""

from __future__ import annotations

from typing import Any

from . import compat, errors
from .parsing import ParsedSchema, parse
from .store import GLOBAL, Store, SubjectVersion

MAX_VERSION = 2**31 - 1


def parse_version(raw: str) -> int | None:
    """Version path segment -> number, or None for "latest" (also spelled -1)."""
    if raw == "latest":
        return None
    try:
        number = int(raw)
    except ValueError:
        raise errors.invalid_version(raw) from None
    if number == -1:
        return None
    if not 1 <= number <= MAX_VERSION:
        raise errors.invalid_version(raw)
    return number


MAX_REFERENCE_DEPTH = 32  # guards against reference cycles


class Registry:
    def __init__(self, store: Store) -> None:
        self.store = store

    # ---- parsing with references -------------------------------------------
    def parse_body(self, body: dict[str, Any]) -> ParsedSchema:
        refs = body.get("references") or []
        return parse(body.get("schema"), body.get("schemaType"), self._referenced_texts(refs), refs)

    def _parse_stored(self, v: SubjectVersion) -> ParsedSchema:
        refs = v.schema.references
        return parse(v.schema.text, v.schema.schema_type, self._referenced_texts(refs), refs)

    def _referenced_texts(self, refs: list, depth: int = 0) -> list[str]:
        """Texts of referenced schemas, transitively, dependencies first, no repeats."""
        if not isinstance(refs, list) or depth > MAX_REFERENCE_DEPTH:
            raise errors.invalid_schema("references must be a list without cycles")
        out: list[str] = []
        for ref in refs:
            if not isinstance(ref, dict) or not ref.get("subject") or "version" not in ref:
                raise errors.invalid_schema(f"reference {ref!r} needs name, subject and version")
            try:
                target = self.version(ref["subject"], str(ref["version"]))
            except errors.RegistryError:
                raise errors.invalid_schema(
                    f"reference '{ref.get('name')}' points at missing subject '{ref['subject']}' "
                    f"version {ref['version']}"
                ) from None
            for text in self._referenced_texts(target.schema.references, depth + 1) + [target.schema.text]:
                if text not in out:
                    out.append(text)
        return out

    def referenced_by(self, subject: str, raw_version: str) -> list[int]:
        target = self.version(subject, raw_version, deleted=True)
        return self.store.schema_ids_referencing(subject, target.version)

    # ---- reads ---------------------------------------------------------
    def versions(self, subject: str, deleted: bool = False) -> list[SubjectVersion]:
        found = self.store.versions(subject, include_deleted=deleted)
        if not found:
            raise errors.subject_not_found(subject)
        return found

    def version(self, subject: str, raw_version: str, deleted: bool = False) -> SubjectVersion:
        number = parse_version(raw_version)
        found = self.versions(subject, deleted)
        if number is None:
            live = [v for v in found if not v.deleted] or found
            return live[-1]
        for v in found:
            if v.version == number:
                return v
        raise errors.version_not_found(subject, number)

    def lookup(self, subject: str, body: dict[str, Any], deleted: bool = False) -> SubjectVersion:
        parsed = self.parse_body(body)
        found = self.versions(subject, deleted)
        for v in reversed(found):
            if v.schema.canonical == parsed.canonical and v.schema.schema_type == parsed.schema_type:
                return v
        raise errors.schema_not_found()

    def level(self, subject: str) -> str:
        return self.store.get_config(subject) or self.store.get_config(GLOBAL) or compat.DEFAULT_LEVEL

    # ---- registration and compatibility -----------------------------------
    def register(self, subject: str, body: dict[str, Any]) -> int:
        parsed = self.parse_body(body)
        live = self.store.versions(subject)
        for v in live:  # already registered: same id, no new version (Confluent)
            if v.schema.canonical == parsed.canonical and v.schema.schema_type == parsed.schema_type:
                return v.schema.id
        level = self.level(subject)
        conflicts = compat.check(parsed.schema, self._parsed(live), level)
        if conflicts:
            versions = ", ".join(str(c.version) for c in conflicts)
            raise errors.incompatible_schema(
                f'Schema being registered is incompatible with an earlier schema for subject "{subject}" '
                f"(version {versions}, compatibility {level}), details: "
                + "; ".join(compat.verbose_messages(conflicts, level))
            )
        schema_id, _ = self.store.add_version(
            subject, parsed.schema_type, parsed.canonical, parsed.text, body.get("references") or []
        )
        return schema_id

    def test_compatibility(self, subject: str, raw_version: str | None, body: dict[str, Any]) -> tuple[bool, list[str]]:
        """raw_version None means "against the versions the level selects"."""
        parsed = self.parse_body(body)
        level = self.level(subject)
        if raw_version is None:
            targets = self.store.versions(subject)
            conflicts = compat.check(parsed.schema, self._parsed(targets), level)
        else:
            target = self.version(subject, raw_version)
            conflicts = compat.check(parsed.schema, self._parsed([target]), level)
        return not conflicts, compat.verbose_messages(conflicts, level)

    def _parsed(self, versions: list[SubjectVersion]) -> list[tuple[int, Any]]:
        return [(v.version, self._parse_stored(v).schema) for v in versions]

    # ---- deletes -------------------------------------------------------
    def _refuse_if_referenced(self, subject: str, versions: list[int]) -> None:
        for number in versions:
            if self.store.schema_ids_referencing(subject, number):
                raise errors.referenced_schema(subject, number)

    def delete_subject(self, subject: str, permanent: bool) -> list[int]:
        every = self.versions(subject, deleted=True)
        self._refuse_if_referenced(subject, [v.version for v in every])
        live = [v.version for v in every if not v.deleted]
        if permanent:
            if live:  # Confluent requires a soft delete first
                raise errors.subject_not_soft_deleted(subject)
            self.store.hard_delete(subject)
            return [v.version for v in every]
        if not live:
            raise errors.subject_soft_deleted(subject)
        self.store.soft_delete(subject)
        self.store.delete_config(subject)  # Confluent drops subject config too
        return live

    def delete_version(self, subject: str, raw_version: str, permanent: bool) -> int:
        target = self.version(subject, raw_version, deleted=True)
        self._refuse_if_referenced(subject, [target.version])
        if permanent:
            if not target.deleted:
                raise errors.version_not_soft_deleted(subject, target.version)
            self.store.hard_delete(subject, target.version)
        else:
            if target.deleted:
                raise errors.version_soft_deleted(subject, target.version)
            self.store.soft_delete(subject, target.version)
        return target.version

    # ---- config --------------------------------------------------------
    def subject_config(self, subject: str, default_to_global: bool) -> str:
        own = self.store.get_config(subject)
        if own:
            return own
        if default_to_global:
            return self.level(GLOBAL)
        raise errors.subject_config_not_found(subject)

    def delete_subject_config(self, subject: str) -> str:
        old = self.store.delete_config(subject)
        if old is None:
            if not self.store.versions(subject, include_deleted=True):
                raise errors.subject_not_found(subject)
            raise errors.subject_config_not_found(subject)
        return old
