"""Topic and subject names: `<prefix>.<system>.<schema>.<table>`, with `.clean` / `.quarantine` suffixes,
and the Avro names of records and fields.

Source systems name things in Chinese (`企业登记`, `姓名`); Kafka topics allow only `[A-Za-z0-9._-]`
and Avro names only `[A-Za-z_][A-Za-z0-9_]*`. A name that is already valid is kept as it is. Any
other is made readable and kept apart from every other name:
- Chinese characters become pinyin without tones (pypinyin), one word per run of characters:
  `企业登记` -> `qiyedengji`, `v2企业Info` -> `v2_qiye_Info`; full-width forms are folded (NFKC); what
  is still not allowed becomes `_`.
- **Topic name parts** (`topic_part`) and record/table names with non-ASCII characters (`avro_name`;
  an ASCII one only has its other characters replaced by `_`, as before) end in `_<6 hex of its SHA-1>`: `企业登记` -> `qiyedengji_5b2f8c`. Every process computes topic names on
  its own, so only a rule that depends on the name alone keeps them stable and apart (homophones
  such as 企业/起夜 both read `qiye`; `a b` and `a_b` are two tables).
- **Field names** (`field_names`) are decided per record, where all names are known: plain pinyin
  (`姓名` -> `xingming`), with the hash suffix only for names that would otherwise meet another
  field's; a clash that remains is refused (`NameCollision`, naming both originals).
The original name stays in the Avro schema (`doc` and the property `huiliu.original_name`,
schemas.envelope), so a catalogue can show it.
"""

from __future__ import annotations

import hashlib
import re
import unicodedata

_UNSAFE = re.compile(r"[^A-Za-z0-9_\-]")
_TOPIC_SAFE = re.compile(r"[A-Za-z0-9_\-]+")
_AVRO_SAFE = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_HAN = re.compile(r"([\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff]+)")
QUARANTINE_SUFFIX = ".quarantine"
CLEAN_SUFFIX = ".clean"
ORIGINAL_NAME = "huiliu.original_name"  # Avro property holding a renamed field's or record's source name


class NameCollision(ValueError):
    """Two different source names would get one topic or field name."""

    config_error = True  # a task meeting it fails at once (connectors.task_runner): retrying cannot help


def short_hash(value: str) -> str:
    return hashlib.sha1(value.encode("utf-8")).hexdigest()[:6]


def transliterate(value: str) -> str:
    """Readable ASCII: Chinese as toneless pinyin, one word per run of characters, runs joined by `_`
    to what stands next to them; other characters NFKC-folded (full-width letters, digits)."""
    from pypinyin import Style, lazy_pinyin  # imported when a name needs it

    out = ""
    for i, run in enumerate(_HAN.split(unicodedata.normalize("NFKC", value))):
        if not run:
            continue
        text = "".join(lazy_pinyin(run, style=Style.NORMAL)) if i % 2 else run
        out += ("_" if out[-1:].isalnum() and text[:1].isalnum() else "") + text
    return out


def _mapped(value: str, unsafe: str) -> str:
    cleaned = re.sub(unsafe, "_", transliterate(value))
    return re.sub(r"__+", "_", cleaned) if cleaned.strip("_") else cleaned


def topic_part(value: str) -> str:
    """One part of a topic name: kept when Kafka allows it, else transliterated + `_<hash>`."""
    if _TOPIC_SAFE.fullmatch(value):
        return value
    return f"{_mapped(value, r'[^A-Za-z0-9_-]').strip('_') or 'x'}_{short_hash(value)}"


def _part(value: str) -> str:  # kept for callers of the old helper
    return topic_part(value)


def topic_name(prefix: str, system: str, schema: str | None, table: str) -> str:
    return ".".join(topic_part(p) for p in (prefix, system, schema or "default", table))


def quarantine_topic(topic: str) -> str:
    return topic + QUARANTINE_SUFFIX


def clean_topic(topic: str) -> str:
    return topic + CLEAN_SUFFIX


def value_subject(topic: str) -> str:
    return f"{topic}-value"


def key_subject(topic: str) -> str:
    return f"{topic}-key"


def _avro_base(value: str) -> str:
    cleaned = _mapped(value, r"[^A-Za-z0-9_]") or "_"
    return cleaned if not cleaned[:1].isdigit() else "_" + cleaned


def avro_name(value: str) -> str:
    """An Avro name (letters, digits, underscores, not starting with a digit) for a record,
    namespace part or table: kept when valid, else transliterated + `_<hash>`."""
    if _AVRO_SAFE.fullmatch(value):
        return value
    if value.isascii():  # as before: an ASCII name's record and table names do not change
        cleaned = re.sub(r"[^A-Za-z0-9_]", "_", value)
        return cleaned if not cleaned[:1].isdigit() else "_" + cleaned
    return f"{_avro_base(value).rstrip('_') or '_'}_{short_hash(value)}"


def ascii_name(value: str, unsafe: str = r"[^A-Za-z0-9_.-]") -> str:
    """A file, directory or HBase family name from a source name: an ASCII name has the characters
    `unsafe` matches replaced by `_` (as before), a name with other characters is transliterated and
    ends in `_<hash>` (`public.企业` and `public.个人` no longer both become `public.__`)."""
    if value.isascii():
        return re.sub(unsafe, "_", value)
    return f"{re.sub(unsafe, '_', transliterate(value)).strip('_') or 'x'}_{short_hash(value)}"


def field_names(originals: list[str], where: str = "") -> dict[str, str]:
    """Avro field names for a record's source column names, original -> name. Valid names are kept;
    others become pinyin, with `_<hash>` only where two would meet. NameCollision names both
    originals when a clash remains. `where` (e.g. the table) goes into that message."""
    plain = {o: (o if _AVRO_SAFE.fullmatch(o) else _avro_base(o)) for o in originals}
    counts: dict[str, int] = {}
    for name in plain.values():
        counts[name] = counts.get(name, 0) + 1
    mapped = {o: (f"{n}_{short_hash(o)}" if counts[n] > 1 and n != o else n) for o, n in plain.items()}
    seen: dict[str, str] = {}
    for original, name in mapped.items():
        other = seen.setdefault(name, original)
        if other != original:
            place = f" of {where}" if where else ""
            raise NameCollision(
                f"columns {other!r} and {original!r}{place} would both be the Avro field {name!r}; "
                "rename one of them at the source or leave one out of the capture"
            )
    return mapped


def check_topics(tables: dict[str, str]) -> None:
    """`tables`: a description of each source table (e.g. system.schema.table) -> its topic. Refuses
    two tables on one topic, naming both."""
    seen: dict[str, str] = {}
    for original, topic in tables.items():
        other = seen.setdefault(topic, original)
        if other != original:
            raise NameCollision(f"tables {other!r} and {original!r} would both be written to topic {topic!r}")
