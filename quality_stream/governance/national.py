"""National code sets Huiliu ships, each from a packaged, published table with its provenance named.

    national_code_sets() -> [{"code", "name", "standard", "source", "items": n}]
    national_code_set("gb2260") -> CodeSetSpec     # KeyError for an unknown one

Shipped: GB/T 2260 administrative divisions (province and prefecture level, the table the rule
engine already uses, quality_stream/data/gb2260_divisions.csv and its README for the source),
GB/T 2261.1-2003 gender (four codes, quality_stream/standards/codesets.py), GB/T 3304 ethnic groups,
GB/T 4658 education and GB/T 2659 countries (three code sets: alpha-3, numeric, alpha-2), each a CSV
under quality_stream/data generated from the package or repository its README names. Not shipped,
because no reliable table is at hand (values are never typed in from memory): GB/T 4761 family
relationship (the public tables found disagree with one another on several codes).
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
    rows = _csv("gb2260_divisions.csv")
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


GB3304_SOURCE = (
    "GB/T 3304-1991 中国各民族名称的罗马字母拼写法和代码: package tourze/gb-t-3304 (MIT, Packagist), "
    "github.com/tourze/gb-t-3304 src/Nationality.php at commit 3387585a342f53eb2c6dda9588e14bca28ff402d; "
    "retrieved 2026-12-06 (quality_stream/data/gb3304_ethnic_groups.csv)"
)
GB4658_SOURCE = (
    "GB/T 4658-2006 学历代码: package tourze/gb-t-4658 (MIT, Packagist), github.com/tourze/gb-t-4658 "
    "src/FormalSchooling.php at commit 10348a912637cf7f2907865d90559ff1bf8a1c97; retrieved 2026-12-06 "
    "(quality_stream/data/gb4658_education.csv)"
)
GB2659_SOURCE = (
    "GB/T 2659 世界各国和地区名称代码 (equivalent to ISO 3166-1): PyPI package pycountry 26.2.16 (its iso-codes "
    "data, LGPL-2.1+), Chinese names from its iso-codes zh_CN translation iso3166-1.mo; retrieved 2026-12-06 "
    "(quality_stream/data/gb2659_countries.csv)"
)


def _csv(name: str) -> list[dict[str, str]]:
    text = resources.files("quality_stream").joinpath(f"data/{name}").read_text(encoding="utf-8")
    return list(csv.DictReader(line for line in text.splitlines() if line and not line.startswith("#")))


def _gb3304() -> CodeSetSpec:
    return CodeSetSpec(
        code="gb3304",
        name="中国各民族名称的罗马字母拼写法和代码 (GB/T 3304-1991)",
        description="数字代码 01-56；罗马字母拼写与字母代码见数据文件 / numeric codes; romanization in the data file",
        source=GB3304_SOURCE,
        items=[CodeItem(code=r["code"], label=r["name"]) for r in _csv("gb3304_ethnic_groups.csv")],
    )


def _gb4658() -> CodeSetSpec:
    rows = _csv("gb4658_education.csv")
    codes = {r["code"] for r in rows}
    # the standard's groups are the x0 codes (10 研究生教育 > 11 博士研究生毕业)
    parent = {r["code"]: r["code"][0] + "0" for r in rows if not r["code"].endswith("0")}
    return CodeSetSpec(
        code="gb4658",
        name="学历代码 (GB/T 4658-2006)",
        source=GB4658_SOURCE,
        items=[
            CodeItem(
                code=r["code"],
                label=r["name"],
                parent=parent.get(r["code"]) if parent.get(r["code"]) in codes else None,
            )
            for r in rows
        ],
    )


def _gb2659(column: str, code: str, what: str) -> Callable[[], CodeSetSpec]:
    def make() -> CodeSetSpec:
        return CodeSetSpec(
            code=code,
            name=f"世界各国和地区名称代码 (GB/T 2659, {what})",
            description="中文名称取自 iso-codes 的 zh_CN 译名 / Chinese names from iso-codes' zh_CN translation",
            source=GB2659_SOURCE,
            items=[CodeItem(code=r[column], label=r["name_zh"]) for r in _csv("gb2659_countries.csv")],
        )

    return make


_SETS: dict[str, tuple[str, Callable[[], CodeSetSpec]]] = {
    "gb2260": ("GB/T 2260", _gb2260),
    "gb2261_1": ("GB/T 2261.1-2003", _gb2261),
    "gb3304": ("GB/T 3304-1991", _gb3304),
    "gb4658": ("GB/T 4658-2006", _gb4658),
    "gb2659": ("GB/T 2659", _gb2659("alpha_3", "gb2659", "三字母代码")),
    "gb2659_numeric": ("GB/T 2659", _gb2659("numeric", "gb2659_numeric", "数字代码")),
    "gb2659_alpha2": ("GB/T 2659", _gb2659("alpha_2", "gb2659_alpha2", "两字母代码")),
}
NOT_SHIPPED = {
    "GB/T 4761": "家庭关系代码 / family relationship",
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
