"""National code sets Huiliu ships, each from a packaged, published table with its provenance named.

    national_code_sets() -> [{"code", "name", "standard", "source", "items": n}]
    national_code_set("gb2260") -> CodeSetSpec     # KeyError for an unknown one

Shipped: GB/T 2260 administrative divisions (province and prefecture level, the table the rule
engine already uses, quality_stream/data/gb2260_divisions.csv and its README for the source) and
GB/T 2261.1-2003 gender (four codes, quality_stream/standards/codesets.py). Not shipped, because no
package or published table is at hand to take them from (values are never typed in from memory):
GB/T 3304 ethnic groups, GB/T 4761 family relationship, GB/T 4658 education, GB/T 2659 countries.
"""

from __future__ import annotations

import csv
from collections.abc import Callable
from importlib import resources

from quality_stream.governance.model import CodeItem, CodeSetSpec
from quality_stream.standards.codesets import GB2261_GENDER

GB2260_SOURCE = (
    "GB/T 2260 行政区划代码 (province and prefecture level): National Bureau of Statistics division codes "
    "(first six digits = GB/T 2260) via github.com/modood/Administrative-divisions-of-China (MIT) "
    "dist/provinces.csv and dist/cities.csv at commit 2824502ba4a6875bceafee81f926789635db1d00, "
    "710000/810000/820000 from GB/T 2260; retrieved 2026-11-25 (quality_stream/data/gb2260_divisions.csv)"
)
GB2261_SOURCE = "GB/T 2261.1-2003 人的性别代码, table 1 (quality_stream/standards/codesets.py GB2261_GENDER)"


def _gb2260() -> CodeSetSpec:
    text = resources.files("quality_stream").joinpath("data/gb2260_divisions.csv").read_text(encoding="utf-8")
    rows = list(csv.DictReader(line for line in text.splitlines() if line and not line.startswith("#")))
    codes = {r["code"] for r in rows}
    items = [
        CodeItem(
            code=r["code"], label=r["name"], parent=(r.get("parent") or None) if r.get("parent") in codes else None
        )
        for r in rows
    ]
    return CodeSetSpec(
        code="gb2260",
        name="中华人民共和国行政区划代码 (GB/T 2260)",
        description="省级与地级行政区划代码；县级代码未收录 / province and prefecture levels; counties not included",
        source=GB2260_SOURCE,
        items=items,
    )


def _gb2261() -> CodeSetSpec:
    return CodeSetSpec(
        code="gb2261_1",
        name="人的性别代码 (GB/T 2261.1-2003)",
        source=GB2261_SOURCE,
        items=[CodeItem(code=c, label=label) for c, label in GB2261_GENDER.items()],
    )


_SETS: dict[str, tuple[str, Callable[[], CodeSetSpec]]] = {
    "gb2260": ("GB/T 2260", _gb2260),
    "gb2261_1": ("GB/T 2261.1-2003", _gb2261),
}
NOT_SHIPPED = {
    "GB/T 3304": "民族代码 / ethnic groups",
    "GB/T 4761": "家庭关系代码 / family relationship",
    "GB/T 4658": "学历代码 / education",
    "GB/T 2659": "世界各国和地区名称代码 / countries",
}


def national_code_set(code: str) -> CodeSetSpec:
    if code not in _SETS:
        raise KeyError(code)
    return _SETS[code][1]()


def national_code_sets() -> list[dict]:
    out = []
    for code, (standard, make) in _SETS.items():
        spec = make()
        out.append(
            {"code": code, "name": spec.name, "standard": standard, "source": spec.source, "items": len(spec.items)}
        )
    return out
