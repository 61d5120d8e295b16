"""Which PyPI versions an OSV advisory marks affected, and the release that fixes them.

OSV (https://ossf.github.io/osv-schema/) says, per affected package: `ranges` of type ECOSYSTEM,
whose events sorted by version open an interval at `introduced` ("0": from the first release) and
close it at `fixed` (excluded) or `last_affected` (included), and an explicit `versions` list; a
version is affected when it lies in any interval or in the list. GIT and SEMVER ranges are left to
other tools: PyPI versions are compared by PEP 440 (`packaging`), as pip and uv order them.
"""

from __future__ import annotations

from dataclasses import dataclass

from packaging.utils import canonicalize_name
from packaging.version import InvalidVersion, Version

_BOUNDS = ("introduced", "fixed", "last_affected")


class Unevaluable(ValueError):
    """An ECOSYSTEM event whose version is not PEP 440: the range cannot be compared."""


@dataclass(frozen=True)
class Interval:
    start: Version | None  # None: "introduced 0", from the first release (pre-releases of 0 included)
    end: Version | None  # None: no later release is known to be unaffected
    end_included: bool  # True for `last_affected`, False for `fixed`

    def holds(self, version: Version) -> bool:
        if self.start is not None and version < self.start:
            return False
        if self.end is None:
            return True
        return version <= self.end if self.end_included else version < self.end


def _version(text: str, record_id: str) -> Version:
    try:
        return Version(str(text))
    except InvalidVersion:
        raise Unevaluable(f"{record_id}: {text!r} is not a PEP 440 version") from None


def intervals(events: list[dict], record_id: str) -> list[Interval]:
    """One ECOSYSTEM range's events as intervals of affected versions (the OSV evaluation, spelled out)."""
    bounds = []
    for event in events:
        for kind in _BOUNDS:
            if kind in event:
                # At one version an interval opens before it closes: "introduced 1.0, fixed 1.0" is empty.
                bounds.append((_version(event[kind], record_id), kind != "introduced", kind, str(event[kind])))
    found, is_open, start = [], False, None
    for version, _, kind, text in sorted(bounds):
        if kind == "introduced":
            if not is_open:  # a second "introduced" inside an open interval changes nothing
                is_open, start = True, None if text == "0" else version
        elif is_open:
            found.append(Interval(start, version, end_included=kind == "last_affected"))
            is_open = False
    if is_open:
        found.append(Interval(start, None, end_included=False))
    return found


def package_entries(record: dict, names: set[str]) -> list[dict]:
    """The record's `affected` entries for the PyPI packages `names` (PEP 503 normalised names)."""
    return [
        entry
        for entry in record.get("affected", [])
        if entry.get("package", {}).get("ecosystem") == "PyPI"
        and canonicalize_name(entry["package"].get("name", "")) in names
    ]


def entry_intervals(entry: dict, record_id: str) -> list[Interval]:
    return [
        interval
        for span in entry.get("ranges", [])
        if span.get("type") == "ECOSYSTEM"
        for interval in intervals(span.get("events", []), record_id)
    ]


def _listed(entry: dict, version: Version) -> bool:
    for text in entry.get("versions", []):
        try:
            if Version(text) == version:  # 2.0.0rc1 and 2.0.0-rc1 are one release
                return True
        except InvalidVersion:
            if text == str(version):
                return True
    return False


def affects(record: dict, name: str, version: str) -> bool:
    """True when `record` marks `name` at `version` affected (a withdrawn record affects nothing)."""
    if record.get("withdrawn"):
        return False
    locked = Version(version)
    for entry in package_entries(record, {canonicalize_name(name)}):
        if _listed(entry, locked) or any(i.holds(locked) for i in entry_intervals(entry, record["id"])):
            return True
    return False


def first_fix(record: dict, name: str, version: str) -> str | None:
    """The lowest `fixed` release above `version` that the record does not itself mark affected."""
    locked = Version(version)
    candidates = sorted(
        interval.end
        for entry in package_entries(record, {canonicalize_name(name)})
        for interval in entry_intervals(entry, record["id"])
        if interval.end is not None and not interval.end_included and interval.end > locked
    )
    return next((str(fix) for fix in candidates if not affects(record, name, str(fix))), None)
