"""Suggest a data element for catalogue fields from name and comment similarity; a person confirms.

    suggest(fields, elements, limit=3, min_score=0.7)
        fields:   [{"name", "comment"}]     elements: [{"code", "name_zh", "name_en", "synonyms"}]
        -> {field name: [{"element", "score", "why"}]}  best first, only scores >= min_score (0.7)

Texts compared: the field's name and comment against the element's code, English and Chinese
names (and the Chinese name's toneless pinyin, since Huiliu's field names are pinyin of Chinese
columns: `xingming` ~ 姓名), and synonyms. Equal after normalising scores 1.0; one containing the
other (two Chinese characters or three others at least) 0.5 + 0.5 x the share of the longer one
it covers; otherwise difflib's ratio.
"""

from __future__ import annotations

import re
from difflib import SequenceMatcher
from typing import Any

_DROP = re.compile(r"[\s_\-.()（）/\\:：,，、]+")


def _norm(text: str | None) -> str:
    return _DROP.sub("", (text or "").lower())


def _pinyin(text: str) -> str:
    if not re.search(r"[\u4e00-\u9fff]", text or ""):
        return ""
    from pypinyin import lazy_pinyin

    return "".join(lazy_pinyin(text))


def similarity(a: str, b: str) -> float:
    a, b = _norm(a), _norm(b)
    if not a or not b:
        return 0.0
    if a == b:
        return 1.0
    ratio = SequenceMatcher(None, a, b).ratio()
    short, long_ = sorted((a, b), key=len)
    meaningful = len(short) >= (2 if re.search(r"[\u4e00-\u9fff]", short) else 3)
    if meaningful and short in long_:
        return max(ratio, 0.5 + 0.5 * len(short) / len(long_))
    return ratio


def _element_texts(e: dict[str, Any]) -> list[tuple[str, str]]:
    out = [("code", e.get("code") or ""), ("name_en", e.get("name_en") or ""), ("name_zh", e.get("name_zh") or "")]
    out.append(("pinyin of name_zh", _pinyin(e.get("name_zh") or "")))
    for s in e.get("synonyms") or []:
        out += [("synonym", s), ("pinyin of synonym", _pinyin(s))]
    return [(k, v) for k, v in out if v]


def suggest(
    fields: list[dict[str, Any]], elements: list[dict[str, Any]], limit: int = 3, min_score: float = 0.7
) -> dict[str, list[dict[str, Any]]]:
    texts = [(e["code"], _element_texts(e)) for e in elements]
    out: dict[str, list[dict[str, Any]]] = {}
    for f in fields:
        mine = [("name", f.get("name") or ""), ("comment", f.get("comment") or "")]
        found = []
        for code, theirs in texts:
            best = max(
                ((similarity(v, t), f"field {k} {v!r} ~ element {kk} {t!r}") for k, v in mine if v for kk, t in theirs),
                default=(0.0, ""),
            )
            if best[0] >= min_score:
                found.append({"element": code, "score": round(best[0], 3), "why": best[1]})
        out[f["name"]] = sorted(found, key=lambda s: (-s["score"], s["element"]))[:limit]
    return out
