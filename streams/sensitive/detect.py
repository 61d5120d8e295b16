"""From a field's sample values to a proposal: which kind of data it holds, how sure, what to do.

    finding = detect_field("phone", ["13800000001", "13900000002", None, ...])
    finding.kind, finding.ratio            # "mobile", 1.0 (of the non-empty values)
    finding.classification, finding.masking   # "sensitive", "phone"
    finding.examples                       # up to three matched values, masked by the proposed rule

A field is proposed as the kind most of its non-empty samples match (at least `threshold`, 0.6 by
default, and at least `min_values` of them): one stray ID number in a notes column proposes nothing,
and neither does a column of random digits (Luhn or the ID check digit pass about one in ten).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import asdict, dataclass, field
from typing import Any

from streams.sensitive.validators import KINDS
from streams.transforms.masking import resolve

# kind -> (classification level of schemas/catalog/business.py, mask spec of streams/transforms/masking.py)
PROPOSALS: dict[str, tuple[str, Any]] = {
    "citizen_id": ("secret", "id_number"),
    "bank_card": ("secret", {"fn": "keep", "first": 6, "last": 4}),
    "social_credit_code": ("internal", {"fn": "keep", "first": 6, "last": 4}),
    "mobile": ("sensitive", "phone"),
    "landline": ("sensitive", "phone"),
    "email": ("sensitive", "email"),
    "ip_address": ("sensitive", {"fn": "keep", "first": 4}),
    "licence_plate": ("sensitive", {"fn": "keep", "first": 2, "last": 1}),
    "chinese_name": ("sensitive", "name"),
    "address": ("sensitive", {"fn": "keep", "first": 6}),
}
LABELS = {
    "citizen_id": ("citizen ID number (GB 11643)", "公民身份号码（GB 11643）"),
    "bank_card": ("bank card number (Luhn)", "银行卡号（Luhn 校验）"),
    "social_credit_code": ("unified social credit code (GB 32100)", "统一社会信用代码（GB 32100）"),
    "mobile": ("mobile number", "手机号码"),
    "landline": ("landline number", "固定电话号码"),
    "email": ("e-mail address", "电子邮箱"),
    "ip_address": ("IP address", "IP 地址"),
    "licence_plate": ("licence plate", "机动车号牌"),
    "chinese_name": ("Chinese personal name", "中文姓名"),
    "address": ("postal address", "住址"),
}
THRESHOLD = 0.6
MIN_VALUES = 3


@dataclass
class Finding:
    field: str
    kind: str
    label: str
    label_zh: str
    ratio: float  # matched / non-empty samples
    matched: int
    sampled: int  # non-empty samples looked at
    classification: str
    masking: Any
    examples: list[str]  # masked by `masking`, never the clear values
    ratios: dict[str, float] = field(default_factory=dict)  # every kind that matched something

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def kind_of(value: str) -> str | None:
    """The first kind (in KINDS' order of precedence) the value is, else None."""
    for kind, check in KINDS.items():
        if check(value):
            return kind
    return None


def detect_field(
    name: str, samples: Iterable[Any], threshold: float = THRESHOLD, min_values: int = MIN_VALUES
) -> Finding | None:
    values = [str(v).strip() for v in samples if v is not None and str(v).strip() != ""]
    if len(values) < min_values:
        return None
    counts: dict[str, int] = {}
    first: dict[str, list[str]] = {}
    for v in values:
        kind = kind_of(v)
        if kind:
            counts[kind] = counts.get(kind, 0) + 1
            examples = first.setdefault(kind, [])
            if len(examples) < 3:
                examples.append(v)
    if not counts:
        return None
    # the most matched kind; equal counts go to the earlier (stricter) kind
    order = list(KINDS)
    kind = max(counts, key=lambda k: (counts[k], -order.index(k)))
    ratio = counts[kind] / len(values)
    if ratio < threshold:
        return None
    level, spec = PROPOSALS[kind]
    mask = resolve(spec)
    return Finding(
        field=name,
        kind=kind,
        label=LABELS[kind][0],
        label_zh=LABELS[kind][1],
        ratio=round(ratio, 4),
        matched=counts[kind],
        sampled=len(values),
        classification=level,
        masking=spec,
        examples=[mask(v) for v in first[kind]],
        ratios={k: round(n / len(values), 4) for k, n in sorted(counts.items(), key=lambda kv: -kv[1])},
    )
